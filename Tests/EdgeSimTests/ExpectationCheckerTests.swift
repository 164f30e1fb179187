import EdgeModel
import EdgeProxy
import EdgeSim
import Foundation
import Testing

/// Checks computed from observations built in code: each passes and fails where it should,
/// and says what it measured.
@Suite struct ExpectationCheckerTests {
    static let paris = IPAddress("127.18.10.1")!
    static let madrid = IPAddress("127.18.20.1")!

    static func scenario(_ expectations: [EdgeModel.Expectation]) throws -> Scenario {
        var scenario = try ConfigLoader().loadScenario(Self.repository + "/scenarios/lab-echo.yaml").value
        scenario.expectations = expectations
        return scenario
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    static func result(_ client: String, ok: Bool, connect: Double = 10, started: Double = 0, ended: Double = 1, held: Bool = false)
        -> ConnectionResult
    {
        ConnectionResult(
            client: client, app: "echo-tcp", transport: "tcp", address: "127.19.0.1:7", ok: ok, error: ok ? nil : "refused",
            started: started, ended: ended, connectMs: connect, firstByteMs: nil, held: held)
    }

    func observed(_ results: [ConnectionResult], events: [Fleet.NodeEvent] = []) -> Observations {
        var observed = Observations()
        observed.results = results
        observed.events = events
        observed.hostAddresses = ["paris": Self.paris, "madrid": Self.madrid]
        return observed
    }

    @Test func successRateComparesTheShareThatSucceeded() throws {
        let results = (0..<99).map { _ in Self.result("paris", ok: true) } + [Self.result("paris", ok: false)]
        let scope = TrafficScope(application: "echo-tcp")
        let checks = ExpectationChecker(
            scenario: try Self.scenario([.successRate(scope: scope, atLeast: 0.99), .successRate(scope: scope, atLeast: 1)]),
            observed: observed(results)
        ).checks()
        #expect(checks.map(\.passed) == [true, false])
        #expect(checks[1].measured == "99% (99/100)")
        #expect(checks[1].detail == "1× refused")
    }

    /// First-byte time under a bound, or lower than another application's from the same clients.
    @Test func firstByteTimeComparesWithABoundOrAnotherApplication() throws {
        func timed(_ app: String, _ client: String, _ ms: Double) -> ConnectionResult {
            var result = Self.result(client, ok: true)
            result.app = app
            result.firstByteMs = ms
            return result
        }
        let results =
            (1...10).map { timed("echo-tcp", "paris", Double(100 + $0)) } + (1...10).map { timed("echo-range", "paris", Double(300 + $0)) }
            + [timed("echo-range", "madrid", 50)]
        let fast = TrafficScope(application: "echo-tcp", clients: ["paris"])
        let slow = TrafficScope(application: "echo-range", clients: ["paris"])
        let checks = ExpectationChecker(
            scenario: try Self.scenario([
                .firstByteTime(scope: fast, percentile: 0.5, bound: .lowerThan(application: "echo-range")),
                .firstByteTime(scope: slow, percentile: 0.5, bound: .lowerThan(application: "echo-tcp")),
                .firstByteTime(scope: fast, percentile: 1, bound: .below(.milliseconds(111))),
                .firstByteTime(scope: fast, percentile: 1, bound: .below(.milliseconds(110))),
            ]), observed: observed(results)
        ).checks()
        #expect(checks.map(\.passed) == [true, false, true, false])
        #expect(checks[0].measured == "105.0 ms (66% lower)", "\(checks[0])")
        #expect(checks[0].expected == "lower than echo-range's 305.0 ms", "madrid's fast first byte is not compared")
    }

    @Test func noTrafficNeverPasses() throws {
        let checks = ExpectationChecker(
            scenario: try Self.scenario([.successRate(scope: TrafficScope(application: "echo-tcp"), atLeast: 0)]), observed: observed([])
        ).checks()
        #expect(checks.map(\.passed) == [false])
    }

    @Test func connectTimeUsesTheNearestRankPercentile() throws {
        let results = (1...100).map { Self.result("paris", ok: true, connect: Double($0)) }
        let scope = TrafficScope(application: "echo-tcp")
        let checks = ExpectationChecker(
            scenario: try Self.scenario([
                .connectTime(scope: scope, percentile: 0.99, below: .milliseconds(100)),
                .connectTime(scope: scope, percentile: 0.99, below: .milliseconds(99)),
            ]), observed: observed(results)
        ).checks()
        #expect(checks.map(\.passed) == [true, false])
        #expect(checks[0].measured.hasPrefix("99.0 ms"))
    }

    @Test func servedByNeedsEveryConnectionOfThoseClientsOnThatNode() throws {
        func event(_ node: String, _ client: IPAddress) -> Fleet.NodeEvent {
            Fleet.NodeEvent(
                event: .connect, time: 0, app: "echo-tcp", node: node, transport: .tcp, client: Endpoint(client, 40000),
                edge: Endpoint(IPAddress("198.19.0.1")!, 7))
        }
        let events = [event("lhr", Self.paris), event("lhr", Self.paris), event("ams", Self.madrid)]
        let checks = ExpectationChecker(
            scenario: try Self.scenario([
                .servedBy(scope: TrafficScope(application: "echo-tcp", clients: ["paris"]), node: "lhr"),
                .servedBy(scope: TrafficScope(application: "echo-tcp", clients: ["madrid"]), node: "lhr"),
            ]), observed: observed([], events: events)
        ).checks()
        #expect(checks.map(\.passed) == [true, false])
        #expect(checks[1].measured == "0 of 1 (ams 1)")
    }

    @Test func survivedConnectionsMustSpanARotationAndStillWork() throws {
        var observed = observed([
            Self.result("paris", ok: true, started: 0, ended: 30, held: true),
            Self.result("paris", ok: true, started: 0, ended: 5, held: true),
        ])
        observed.rotations = [
            AddressRotator.Rotation(app: "echo-tcp", old: ["127.19.0.1"], new: ["127.19.0.2"], servedAt: 10, publishedAt: 10, retiredAt: 15)
        ]
        let check = { (observed: Observations) in
            try ExpectationChecker(scenario: Self.scenario([.connectionsSurvived(application: "echo-tcp")]), observed: observed).checks()[0]
        }
        // One held connection ended before the rotation: it proves nothing.
        #expect(try check(observed).passed == false)
        observed.results.removeLast()
        #expect(try check(observed).passed == true)
        observed.results[0].ok = false
        #expect(try check(observed).passed == false)
    }

    @Test func oldAddressesMustAllRefuse() throws {
        var observed = observed([])
        let check = { (observed: Observations) in
            try ExpectationChecker(scenario: Self.scenario([.oldAddressRefused(application: "echo-tcp")]), observed: observed).checks()[0]
        }
        #expect(try check(observed).passed == false, "no probe, no pass")
        observed.probes = [Observations.Probe(app: "echo-tcp", address: "127.19.0.1:7", refused: true, detail: "refused")]
        #expect(try check(observed).passed)
        observed.probes.append(Observations.Probe(app: "echo-tcp", address: "127.19.0.2:7", refused: false, detail: "accepted"))
        #expect(try check(observed).passed == false)
    }

    @Test func theJUnitReportHasOneCaseEachAndEscapesText() {
        var report = RunReport(scenario: "a<b", mode: "loopback", outcome: .failed, started: 0, durationSeconds: 1.5)
        report.checks = [
            RunReport.Check(name: "ok", passed: true, measured: "1", expected: "1"),
            RunReport.Check(name: "bad \"one\"", passed: false, measured: "0 & more", expected: "1"),
        ]
        let xml = report.junit()
        #expect(xml.contains("<testsuite name=\"a&lt;b\" tests=\"2\" failures=\"1\""))
        #expect(xml.contains("<testcase classname=\"edgesim.a&lt;b\" name=\"bad &quot;one&quot;\">"))
        #expect(xml.contains("<failure message=\"expected 1, measured 0 &amp; more\">"))
        #expect(xml.components(separatedBy: "<testcase").count == 3)
    }
}
