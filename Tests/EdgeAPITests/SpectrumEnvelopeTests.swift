import EdgeAPI
import Foundation
import Testing

@Suite struct SpectrumEnvelopeTests {
    func decoded(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func aSuccessCarriesTheResultAndItsPageInformation() throws {
        let page = SpectrumEnvelope.Page(page: "2", perPage: "2")
        let (chosen, info) = page.slice(["a", "b", "c", "d", "e"])
        #expect(chosen == ["c", "d"])
        let object = try decoded(SpectrumEnvelope.success(chosen, info: info))
        #expect(object["success"] as? Bool == true)
        #expect((object["errors"] as? [Any])?.isEmpty == true)
        #expect(object["result"] as? [String] == ["c", "d"])
        let resultInfo = try #require(object["result_info"] as? [String: Int])
        #expect(resultInfo == ["page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3])
    }

    @Test func aPageBeyondTheLastIsEmptySoClientsStopPaging() {
        let (chosen, info) = SpectrumEnvelope.Page(page: "9", perPage: "20").slice([1, 2, 3])
        #expect(chosen.isEmpty)
        #expect(info["count"] as? Int == 0)
        #expect(info["total_count"] as? Int == 3)
    }

    @Test func pageSizesStayWithinBoundsAndNonsenseFallsBackToDefaults() {
        #expect(SpectrumEnvelope.Page(page: "0", perPage: "100000") == SpectrumEnvelope.Page(page: "1", perPage: "1000"))
        #expect(SpectrumEnvelope.Page(page: "x", perPage: nil).perPage == 20)
        #expect(SpectrumEnvelope.Page(page: "-3", perPage: "0").page == 1)
        #expect(SpectrumEnvelope.Page(page: nil, perPage: "0").perPage == 1)
    }

    @Test func aFailureHasCloudflaresShape() throws {
        let object = try decoded(SpectrumEnvelope.failure(.unknownObject, ["no application has id 'x'"]))
        #expect(object["success"] as? Bool == false)
        #expect(object["result"] is NSNull)
        let errors = try #require(object["errors"] as? [[String: Any]])
        #expect(errors.count == 1)
        #expect(errors[0]["code"] as? Int == 7003)
        #expect(errors[0]["message"] as? String == "no application has id 'x'")
    }
}
