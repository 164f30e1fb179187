import EdgeModel
import Foundation
import Testing

/// `replay` steps: where the flows go (`app` or a port `map`), how replies are compared, the
/// capture filter, and every mistake named with its field.
@Suite struct ReplayStepTests {
    let scratch = Scratch()

    func scenario(_ step: String, expect: String = "  - replay_success: {at_least: 100%}") -> String {
        scratch.write("topo/small.yaml", smallTopology)
        scratch.write("scenarios/captures/dns.pcap", Data([0xd4, 0xc3, 0xb2, 0xa1]))
        return scratch.write(
            "scenarios/replay.yaml",
            """
            name: replay
            topology: ../topo/small.yaml
            timeout: 30s
            apps:
              - id: echo
                protocol: tcp/7000-7009
                dns: {type: CNAME, name: echo.example}
                origin_direct: ["tcp://echo:9000-9009"]
              - id: mail
                protocol: tcp/25
                dns: {type: CNAME, name: mail.example}
                origin_direct: ["tcp://mx:25"]
            timeline:
              - at: 0s
                replay: \(step)
            expect:
            \(expect)
            """)
    }

    func step(_ path: String) throws -> ReplayStep {
        let loaded = try ConfigLoader().loadScenario(path).value
        guard case .replay(let step) = loaded.timeline.first?.step else {
            Issue.record("no replay step")
            throw CancellationError()
        }
        return step
    }

    @Test func anApplicationTargetWithDefaults() throws {
        let step = try step(scenario("{pcap: captures/dns.pcap, from: client-1, app: echo.example}"))
        #expect(step.target == .application("echo"))
        #expect(step.speed == 1)
        #expect(step.compare == .length)
        #expect(step.filter == nil)
        #expect(step.udpIdle == .seconds(60))
        #expect(step.capture.hasSuffix("/scenarios/captures/dns.pcap"))
        #expect(step.applications == ["echo"])
    }

    @Test func aPortMapWithTheFleetsDNS() throws {
        let step = try step(
            scenario(
                "{pcap: captures/dns.pcap, from: client-2, map: {53: fleet_dns, 25: mail.example, 7000: echo}, speed: 0, compare: exact, filter: \"port 53 or port 25\", udp_idle: 5s}"
            ))
        #expect(step.target == .ports([53: "fleet_dns", 25: "mail", 7000: "echo"]))
        #expect(step.speed == 0)
        #expect(step.compare == .exact)
        #expect(step.filter == "port 53 or port 25")
        #expect(step.udpIdle == .seconds(5))
        #expect(step.applications == ["echo", "mail"])
    }

    @Test func replayExpectationsAreRead() throws {
        let path = scenario(
            "{pcap: captures/dns.pcap, from: client-1, app: echo}",
            expect:
                "  - replay_success: {app: echo, at_least: 99%}\n  - replay_timing: {p99: 1ms}\n  - replay_timing: {app: mail, max: 5ms}")
        let loaded = try ConfigLoader().loadScenario(path).value
        #expect(
            loaded.expectations == [
                .replaySuccess(application: "echo", atLeast: 0.99),
                .replayTiming(application: nil, percentile: 0.99, below: .milliseconds(1)),
                .replayTiming(application: "mail", percentile: 1, below: .milliseconds(5)),
            ])
    }

    @Test(
        arguments: [
            ("{pcap: captures/dns.pcap, from: client-1}", "timeline[0].replay.app", "give either app"),
            ("{pcap: captures/dns.pcap, from: client-1, app: echo, map: {53: echo}}", "timeline[0].replay.app", "give either app"),
            ("{pcap: captures/dns.pcap, from: client-1, map: {dns: echo}}", "timeline[0].replay.map.dns", "'dns' is not a port"),
            ("{pcap: captures/dns.pcap, from: client-1, map: {0: echo}}", "timeline[0].replay.map.0", "'0' is not a port"),
            (
                "{pcap: captures/dns.pcap, from: client-1, map: {53: ghost}}", "timeline[0].replay.map.53",
                "or fleet_dns for the fleet's DNS"
            ),
            ("{pcap: captures/dns.pcap, from: client-1, map: []}", "timeline[0].replay.map", "a mapping of captured ports"),
            ("{pcap: captures/dns.pcap, from: client-1, app: echo, compare: bytes}", "timeline[0].replay.compare", "none, length, exact"),
            ("{pcap: captures/dns.pcap, from: client-1, app: echo, speed: -1}", "timeline[0].replay.speed", "from 0"),
            ("{pcap: captures/dns.pcap, from: client-1, app: echo, filter: \"\"}", "timeline[0].replay.filter", "capture filter"),
            ("{pcap: captures/dns.pcap, from: client-1, app: echo, udp_idle: 0s}", "timeline[0].replay.udp_idle", "above zero"),
            ("{pcap: captures/none.pcap, from: client-1, app: echo}", "timeline[0].replay.pcap", "no capture file at"),
            ("{pcap: captures/dns.pcap, from: client-9, app: echo}", "timeline[0].replay.from", "'client-9' is not a client"),
        ] as [(String, String, String)])
    func mistakesAreNamedWithTheirField(step: String, field: String, message: String) throws {
        let result = ConfigLoader().validate(scenario(step))
        let error = try #require(result.onlyError(), "expected one error, got \(result.errors)")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }
}
