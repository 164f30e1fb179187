import EdgeModel
import Foundation
import Testing

@testable import EdgeSim

@Suite struct SoakChecksTests {
    /// What the soak checks: memory and descriptors from when the fleet was up to the end, and
    /// nothing left after the teardown; each passes and fails where it should.
    @Test func memoryAndLeftoversAreChecked() throws {
        var scenario = try ConfigLoader().loadScenario(ExpectationCheckerTests.repository + "/scenarios/lab-echo.yaml").value
        scenario.expectations = [.memoryBounded(maxRSS: 100 << 20, maxGrowth: 10 << 20, maxDescriptorGrowth: 8), .noLeftovers]
        var observed = Observations()
        observed.usage = [
            "lhr": (ProcessUsage(rssBytes: 30 << 20, descriptors: 18), ProcessUsage(rssBytes: 35 << 20, descriptors: 20)),
            "runner": (ProcessUsage(rssBytes: 40 << 20, descriptors: 100), ProcessUsage(rssBytes: 45 << 20, descriptors: 104)),
        ]
        var checks = ExpectationChecker(scenario: scenario, observed: observed).checks()
        #expect(checks.map(\.passed) == [true, true])
        #expect(checks[0].measured == "largest runner at 45.0 MiB; 0 over")
        observed.usage["lhr"] = (ProcessUsage(rssBytes: 30 << 20, descriptors: 18), ProcessUsage(rssBytes: 60 << 20, descriptors: 900))
        observed.leftovers = ["network namespace edgesim-1-paris"]
        checks = ExpectationChecker(scenario: scenario, observed: observed).checks()
        #expect(checks.map(\.passed) == [false, false])
        #expect(checks[0].detail == "lhr grew by 30.0 MiB; lhr holds 882 more descriptors")
        #expect(checks[1].detail == "network namespace edgesim-1-paris")
        #expect(ProcessUsage.of(getpid())!.rssBytes > 1 << 20)
    }
}
