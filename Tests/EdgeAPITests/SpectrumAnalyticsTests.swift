import EdgeAPI
import Foundation
import Testing

@Suite struct SpectrumAnalyticsTests {
    static let start = 1_800_000_000.0
    /// Two applications on two nodes: connects and disconnects with bytes and durations.
    static let events: [AnalyticsEvent] = [
        .init(event: "connect", appID: "ssh", coloName: "ams", ipVersion: 4, bytesIngress: 0, bytesEgress: 0, durationMs: nil, time: start),
        .init(
            event: "disconnect", appID: "ssh", coloName: "ams", ipVersion: 4, bytesIngress: 100, bytesEgress: 1000, durationMs: 10,
            time: start + 30),
        .init(
            event: "connect", appID: "ssh", coloName: "fra", ipVersion: 6, bytesIngress: 0, bytesEgress: 0, durationMs: nil,
            time: start + 70),
        .init(
            event: "disconnect", appID: "ssh", coloName: "fra", ipVersion: 6, bytesIngress: 300, bytesEgress: 3000, durationMs: 30,
            time: start + 90),
        .init(
            event: "connect", appID: "game", coloName: "ams", ipVersion: 4, bytesIngress: 0, bytesEgress: 0, durationMs: nil,
            time: start + 100),
    ]

    func query(_ parameters: [String: [String]], bytime: Bool = false) throws -> AnalyticsQuery {
        var all = parameters
        all["since"] = all["since"] ?? ["2027-01-15T08:00:00Z"]
        all["until"] = all["until"] ?? ["2027-01-15T08:05:00Z"]
        return try AnalyticsQuery(all: { all[$0] ?? [] }, bytime: bytime)
    }

    func rows(_ result: [String: Any]) -> [[String]: [Double]] {
        var rows: [[String]: [Double]] = [:]
        for row in result["data"] as? [[String: Any]] ?? [] {
            rows[row["dimensions"] as? [String] ?? []] = row["metrics"] as? [Double]
        }
        return rows
    }

    @Test func theSummaryGroupsByTheDimensionsAndComputesEachMetric() throws {
        let summary = try query(["dimensions": ["appID", "event"], "metrics": ["count", "bytesIngress", "bytesEgress", "durationAvg"]])
            .summary(Self.events)
        #expect(
            rows(summary) == [
                ["ssh", "connect"]: [2, 0, 0, 0], ["ssh", "disconnect"]: [2, 400, 4000, 20], ["game", "connect"]: [1, 0, 0, 0],
            ])
        #expect(summary["rows"] as? Int == 3)
        #expect((summary["totals"] as? [String: Double])?["bytesEgress"] == 4000)
        #expect((summary["max"] as? [String: Double])?["count"] == 2)
        #expect((summary["query"] as? [String: Any])?["dimensions"] as? [String] == ["appID", "event"])
    }

    @Test func filtersSortAndLimitNarrowTheRows() throws {
        let byColo = try query([
            "dimensions": ["coloName"], "metrics": ["count"], "filters": ["event==connect,ipVersion==6"], "sort": ["-count"],
        ])
        .summary(Self.events)
        // connects anywhere, or anything over IPv6: ams has two connects; fra one connect and one IPv6 disconnect.
        #expect(rows(byColo) == [["ams"]: [2], ["fra"]: [2]])
        let both = try query(["dimensions": ["appID"], "metrics": ["count"], "filters": ["event==disconnect;coloName==fra"]])
            .summary(Self.events)
        #expect(rows(both) == [["ssh"]: [1]])
        let top = try query(["dimensions": ["appID"], "metrics": ["count"], "sort": ["-count"], "limit": ["1"]]).summary(Self.events)
        #expect((top["data"] as? [[String: Any]])?.first?["dimensions"] as? [String] == ["ssh"])
        #expect(top["rows"] as? Int == 1)
    }

    @Test func percentilesAreByNearestRank() throws {
        let summary = try query(["metrics": ["durationMedian", "duration90th", "duration99th"]]).summary(Self.events)
        #expect(rows(summary) == [[]: [10, 30, 30]])
    }

    @Test func byTimeGivesOneValuePerInterval() throws {
        let result = try query(["dimensions": ["appID"], "metrics": ["count"], "time_delta": ["minute"]], bytime: true).byTime(Self.events)
        let data = try #require(result["data"] as? [[String: Any]])
        let ssh = try #require(data.first { ($0["dimensions"] as? [String]) == ["ssh"] })
        #expect(ssh["metrics"] as? [[Double]] == [[2, 2, 0, 0, 0]])
        let intervals = try #require(result["time_intervals"] as? [[String]])
        #expect(intervals.count == 5)
        #expect(intervals.first == ["2027-01-15T08:00:00Z", "2027-01-15T08:01:00Z"])
    }

    @Test func badQueriesAreRefusedWithTheReason() {
        let cases: [([String: [String]], String)] = [
            (["dimensions": ["country"]], "unknown dimension 'country'"),
            (["metrics": ["latency"]], "unknown metric 'latency'"),
            (["filters": ["appID~ssh"]], "no comparison"),
            (["filters": ["colour==red"]], "unknown dimension 'colour'"),
            (["sort": ["-bytesEgress"], "metrics": ["count"]], "sort field 'bytesEgress'"),
            (["since": ["yesterday"]], "not an RFC 3339 time"),
            (["since": ["2027-01-15T09:00:00Z"]], "since is after until"),
            (["limit": ["0"]], "not a positive number"),
        ]
        for (parameters, message) in cases {
            do {
                _ = try query(parameters)
                Issue.record("\(parameters) was accepted")
            } catch {
                #expect("\(error)".contains(message), "\(parameters): \(error)")
            }
        }
        #expect(throws: AnalyticsQuery.QueryError.self) { try query([:], bytime: true) }
        #expect(throws: AnalyticsQuery.QueryError.self) { try query(["time_delta": ["fortnight"]], bytime: true) }
    }

    @Test func theCurrentAggregateCountsOpenConnectionsPerApplication() {
        let all = currentAggregate(Self.events, appIDs: [], colo: nil)
        #expect(all.map { $0["appID"] as? String } == ["game", "ssh"])
        #expect(all.map { $0["connections"] as? Int } == [1, 0])
        #expect(all[1]["bytesEgress"] as? UInt64 == 4000)
        #expect(all[1]["durationAvg"] as? Double == 20)
        let ams = currentAggregate(Self.events, appIDs: ["ssh"], colo: "ams")
        #expect(ams.count == 1 && ams[0]["bytesIngress"] as? UInt64 == 100)
    }
}
