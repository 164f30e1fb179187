import Foundation
import Testing

@testable import EdgeModel

@Suite struct ScenarioTests {
    let scratch = Scratch()

    static let scenario = """
        name: small-run
        topology: topo/small.yaml
        timeout: 60s
        apps:
          - id: echo
            protocol: tcp/7000-7009
            dns: {type: CNAME, name: echo.example}
            origin_direct: ["tcp://echo:9000-9009"]
            ip_firewall: true
          - id: mail
            protocol: tcp/25
            dns: {type: CNAME, name: mail.example}
            origin_direct: ["tcp://mx:25"]
            proxy_protocol: v1
        access_rules:
          - {mode: block, configuration: {target: ip_range, value: 198.18.1.0/24}}
          - {mode: allow, configuration: {target: ip, value: 198.18.1.1}}
        rotation: {every: 10s, drain: 2s, apps: [echo]}
        timeline:
          - at: 5s
            link: {between: [client-1, edge-a], latency: 80ms, loss: 1%}
          - at: 0s
            traffic: {from: [client-1, client-2], app: echo.example, connections: 20, concurrency: 4, bytes: 4KiB, rate: 10/s}
          - at: 6s
            node: {name: edge-a, action: kill}
          - at: 7s
            origin: {name: mx, action: stop}
          - at: 8s
            rotate: {apps: [echo]}
          - at: 9s
            link: {between: [client-1, edge-a], cut: true}
        expect:
          - success_rate: {app: echo, at_least: 99.5%}
          - connect_time: {app: echo, p99: 150ms}
          - client_address_seen: {app: mail, from: client-1}
          - blocked: {from: client-1, app: echo}
          - served_by: {from: client-2, node: edge-b}
          - rotations: {app: echo, at_least: 1}
          - old_address_refused: {app: echo}
          - connections_survived: {app: echo}
        """

    func write(_ scenario: String = Self.scenario) -> String {
        scratch.write("topo/small.yaml", smallTopology)
        return scratch.write("scenarios/run.yaml", scenario.replacingOccurrences(of: "topology: topo/", with: "topology: ../topo/"))
    }

    @Test func mailExpectationsAndChecksAreRead() throws {
        let text = Self.scenario.replacingOccurrences(
            of: "  - connections_survived: {app: echo}",
            with:
                "  - client_rejected: {app: mail, from: client-1, reason: no PTR}\n  - client_accepted: {app: mail.example, from: [client-2]}"
        )
        scratch.write(
            "topo/small.yaml",
            smallTopology.replacingOccurrences(
                of: "{name: mx, kind: smtp, proxy_protocol: v1}", with: "{name: mx, kind: smtp, proxy_protocol: v1, checks: [ptr, fcrdns]}"
            ).replacingOccurrences(
                of: "{name: client-1, ipv4: 198.18.1.1}", with: "{name: client-1, ipv4: 198.18.1.1, ptr_confirmed: false}"))
        let path = scratch.write("scenarios/run.yaml", text.replacingOccurrences(of: "topology: topo/", with: "topology: ../topo/"))
        let scenario = try ConfigLoader().loadScenario(path).value
        #expect(
            scenario.expectations.suffix(2) == [
                .clientRejected(scope: TrafficScope(application: "mail", clients: ["client-1"]), reason: "no PTR"),
                .clientAccepted(scope: TrafficScope(application: "mail", clients: ["client-2"])),
            ])
        #expect(scenario.topology.origin(named: "mx")?.checks == [.ptr, .fcrdns])
        #expect(scenario.topology.clients.map(\.ptrConfirmed) == [false, true])
    }

    @Test func limitsAreReadWithTheirDefaults() throws {
        #expect(try ConfigLoader().loadScenario(write()).value.limits == NodeLimits())
        let path = write(
            Self.scenario.replacingOccurrences(
                of: "timeout: 60s", with: "timeout: 60s\nlimits: {tcp_connections: 50, tcp_idle_timeout: 2s, udp_flows: 7}"))
        let limits = try ConfigLoader().loadScenario(path).value.limits
        #expect(limits.tcpConnections == 50)
        #expect(limits.tcpIdleTimeout == .seconds(2))
        #expect(limits.udpFlows == 7)
        #expect(limits.tcpHalfClosedTimeout == .seconds(30))
        #expect(limits.bufferedBytes == nil)
        let buffered = write(Self.scenario.replacingOccurrences(of: "timeout: 60s", with: "timeout: 60s\nlimits: {buffered_bytes: 64KiB}"))
        #expect(try ConfigLoader().loadScenario(buffered).value.limits.bufferedBytes == 65_536)
    }

    static let byName = scenario.replacingOccurrences(
        of: "    origin_direct: [\"tcp://mx:25\"]", with: "    origin_dns: {name: MX.Origin.Example.}\n    origin_port: 25"
    ).replacingOccurrences(of: "timeout: 60s", with: "timeout: 60s\norigin_names:\n  - {name: mx.origin.example, to: [mx], ttl: 2s}")

    @Test func originNamesAndTheirStepsAreRead() throws {
        let text = Self.byName.replacingOccurrences(
            of: "origin: {name: mx, action: stop}", with: "origin_name: {name: mx.origin.example, to: [echo, mx]}"
        ).replacingOccurrences(
            of: "  - connections_survived: {app: echo}", with: "  - origin_reached: {app: mail, origin: mx, at_least: 3}")
        let scenario = try ConfigLoader().loadScenario(write(text)).value
        #expect(scenario.originNames == [OriginName(name: "mx.origin.example", origins: ["mx"], ttl: .seconds(2))])
        #expect(scenario.timeline.map(\.step).contains(.originName(OriginNameStep(name: "mx.origin.example", origins: ["echo", "mx"]))))
        #expect(scenario.expectations.contains(.originReached(scope: TrafficScope(application: "mail"), origin: "mx", atLeast: 3)))
    }

    @Test(arguments: [
        (
            "  - {name: mx.origin.example, to: [mx], ttl: 2s}", "  - {name: mx.origin.example, to: [mxx], ttl: 2s}",
            "origin_names[0].to[0]", "'mxx' is not an origin"
        ),
        (
            "  - {name: mx.origin.example, to: [mx], ttl: 2s}", "  - {name: mx..example, to: [mx]}", "origin_names[0].name",
            "is not a DNS name"
        ),
        (
            "  - {name: mx.origin.example, to: [mx], ttl: 2s}", "  - {name: other.example, to: [mx]}", "apps[mail].origin_dns.name",
            "add mx.origin.example there"
        ),
        (
            "origin: {name: mx, action: stop}", "origin_name: {name: nope.example, to: [mx]}", "timeline[3].origin_name.name",
            "not in origin_names (mx.origin.example)"
        ),
        (
            "  - connections_survived: {app: echo}", "  - origin_reached: {app: mail, origin: edge-a}", "expect[7].origin_reached.origin",
            "not an origin"
        ),
    ])
    func originNameMistakesAreReportedPrecisely(line: String, replacement: String, field: String, message: String) throws {
        #expect(Self.byName.contains(line), "fixture text not found")
        let path = write(Self.byName.replacingOccurrences(of: line, with: replacement))
        // The first error is the one named (a name that cannot be read also leaves the
        // application's name unlisted).
        let result = ConfigLoader().validate(path)
        let error = try #require(result.errors.first, "expected an error")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func slowReadAndBoundedProcessesAreRead() throws {
        let text = Self.scenario.replacingOccurrences(
            of: "origin: {name: mx, action: stop}", with: "origin: {name: mx, action: slow_read, read_rate: 64KiB/s}"
        ).replacingOccurrences(
            of: "  - connections_survived: {app: echo}",
            with:
                "  - memory_bounded: {max_rss: 1GiB, max_growth: 4MiB, processes: [edge-a, runner]}\n  - limited: {app: echo, limit: buffered, at_least: 2}"
        )
        let scenario = try ConfigLoader().loadScenario(write(text)).value
        #expect(scenario.timeline.map(\.step).contains(.origin(HostStep(name: "mx", action: .slowRead, readRate: 65_536))))
        #expect(
            scenario.expectations.contains(
                .memoryBounded(maxRSS: 1 << 30, maxGrowth: 4 << 20, maxDescriptorGrowth: 64, processes: ["edge-a", "runner"])))
        #expect(scenario.expectations.contains(.limited(scope: TrafficScope(application: "echo"), limit: "buffered", atLeast: 2)))
    }

    @Test func fullScenarioIsRead() throws {
        let scenario = try ConfigLoader().loadScenario(write()).value
        #expect(scenario.topology.name == "small")
        #expect(scenario.topologyPath == scratch.folder.appendingPathComponent("topo/small.yaml").standardizedFileURL.path)
        #expect(scenario.applications.map(\.id) == ["echo", "mail"])
        #expect(
            scenario.accessRules == [
                AccessRule(action: .block, target: .prefix(try IPPrefix.parse("198.18.1.0/24").get())),
                AccessRule(action: .allow, target: .ip(IPAddress("198.18.1.1")!)),
            ])
        #expect(scenario.rotation == RotationSchedule(every: .seconds(10), drain: .seconds(2), applications: ["echo"]))
        #expect(scenario.timeline.map(\.at) == [0, 5, 6, 7, 8, 9].map { Duration.seconds($0) }, "steps are sorted by time")
        guard case .traffic(let traffic) = scenario.timeline[0].step else {
            Issue.record("first step should be traffic")
            return
        }
        #expect(traffic.application == "echo", "apps are referenced by name or id and stored by id")
        #expect(traffic.clients == ["client-1", "client-2"])
        #expect(traffic.bytes == 4096 && traffic.rate == 10 && traffic.resolve)
        guard case .link(let link) = scenario.timeline[1].step, case .set(let shape) = link.change else {
            Issue.record("second step should change a link")
            return
        }
        #expect(shape.latency == .milliseconds(80))
        #expect(shape.jitter == .milliseconds(1), "unchanged fields keep the topology's values")
        #expect(shape.loss == 0.01)
        #expect(scenario.expectations.count == 8)
        #expect(
            scenario.expectations[1] == .connectTime(scope: TrafficScope(application: "echo"), percentile: 0.99, below: .milliseconds(150)))
    }

    @Test func everyExampleScenarioIsValid() throws {
        let folder = repositoryRoot.appendingPathComponent("scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for file in files {
            let result = ConfigLoader().validate(folder.appendingPathComponent(file).path)
            #expect(result.kind == .scenario)
            #expect(result.errors.isEmpty, "\(file): \(result.issues)")
        }
    }

    @Test(
        arguments: [
            (
                "  - at: 9s\n    link: {between: [client-1, edge-a], cut: true}", "  - at: 9s\n    wait: {}", "timeline[5].wait",
                "unknown step kind 'wait'; a step is one of: traffic, replay, link"
            ),
            (
                "  - at: 9s\n    link: {between: [client-1, edge-a], cut: true}", "  - at: 9s", "timeline[5].at",
                "a step needs one of: traffic, replay, link"
            ),
            (
                "  - at: 9s\n    link: {between: [client-1, edge-a], cut: true}",
                "  - at: 9s\n    link: {between: [client-1, edge-a], cut: true}\n    node: {name: edge-a, action: stop}",
                "timeline[5].node", "a step has one kind; found link and node"
            ),
            (
                "  - at: 9s\n    link: {between: [client-1, edge-a], cut: true}",
                "  - at: 90s\n    link: {between: [client-1, edge-a], cut: true}", "timeline[5].at", "comes after the timeout (60s)"
            ),
            (
                "link: {between: [client-1, edge-a], cut: true}", "link: {between: [client-1, edge-b], cut: true}",
                "timeline[5].link.between", "no link between client-1 and edge-b"
            ),
            (
                "link: {between: [client-1, edge-a], cut: true}", "link: {between: [client-1, edge-a], cut: true, latency: 5ms}",
                "timeline[5].link.between", "does one thing"
            ),
            (
                "node: {name: edge-a, action: kill}", "node: {name: edge-z, action: kill}", "timeline[2].node.name",
                "'edge-z' is not an edge node of the topology (did you mean 'edge-a'?)"
            ),
            (
                "node: {name: edge-a, action: kill}", "node: {name: edge-a, action: explode}", "timeline[2].node.action",
                "not one of: stop, start, restart, kill"
            ),
            (
                "node: {name: edge-a, action: kill}", "node: {name: edge-a, action: blackhole}", "timeline[2].node.action",
                "'blackhole' is not one of: stop, start, restart, kill, freeze, thaw"
            ),
            (
                "origin: {name: mx, action: stop}", "origin: {name: mx, action: freeze}", "timeline[3].origin.action",
                "'freeze' is not one of: stop, start, restart, kill, blackhole, reset"
            ),
            (
                "origin: {name: mx, action: stop}", "origin: {name: edge-a, action: stop}", "timeline[3].origin.name",
                "not an origin of the topology"
            ),
            (
                "app: echo.example, connections: 20", "app: nope.example, connections: 20", "timeline[1].traffic.app",
                "no application has id or name 'nope.example'"
            ),
            (
                "traffic: {from: [client-1, client-2]", "traffic: {from: [client-1, client-9]", "timeline[1].traffic.from[1]",
                "'client-9' is not a client"
            ),
            ("connections: 20, concurrency: 4", "connections: 2, concurrency: 4", "timeline[1].traffic.concurrency", "above connections 2"),
            ("rate: 10/s", "rate: 10", "timeline[1].traffic.rate", "not a rate"),
            (
                "  - success_rate: {app: echo, at_least: 99.5%}", "  - sucess_rate: {app: echo, at_least: 99.5%}", "expect[0].sucess_rate",
                "unknown expectation 'sucess_rate' (did you mean 'success_rate'?)"
            ),
            (
                "  - connect_time: {app: echo, p99: 150ms}", "  - connect_time: {app: echo, p99: 150ms, p50: 1ms}",
                "expect[1].connect_time.p99", "exactly one of p50, p90, p99, max"
            ),
            (
                "  - served_by: {from: client-2, node: edge-b}", "  - served_by: {from: client-2, node: echo}", "expect[4].served_by.node",
                "not an edge node"
            ),
            (
                "  - rotations: {app: echo, at_least: 1}", "  - rotations: {app: mail, at_least: -1}", "expect[5].rotations.at_least",
                "must be 0-1000000"
            ),
            ("timeout: 60s", "timeout: 60s\nlimits: {tcp_idle_timeout: 0s}", "limits.tcp_idle_timeout", "must be above zero"),
            ("timeout: 60s", "timeout: 60s\nlimits: {tcp_connections: 0}", "limits.tcp_connections", "must be 1-10000000"),
            ("timeout: 60s", "timeout: 60s\nlimits: {tcp_conections: 5}", "limits.tcp_conections", "did you mean 'tcp_connections'"),
            ("timeout: 60s", "timeout: 60s\nlimits: {buffered_bytes: 1KiB}", "limits.buffered_bytes", "from 4KiB to 64MiB"),
            (
                "origin: {name: mx, action: stop}", "origin: {name: mx, action: slow_read}", "timeline[3].origin.action",
                "slow_read needs read_rate"
            ),
            (
                "origin: {name: mx, action: stop}", "origin: {name: mx, action: stop, read_rate: 1KiB/s}",
                "timeline[3].origin.read_rate", "only for slow_read"
            ),
            (
                "origin: {name: mx, action: stop}", "origin: {name: mx, action: slow_read, read_rate: 0/s}",
                "timeline[3].origin.read_rate", "above zero"
            ),
            (
                "  - connections_survived: {app: echo}", "  - memory_bounded: {max_rss: 1GiB, processes: [edge-a, runer]}",
                "expect[7].memory_bounded.processes[1]", "'runer' is not an edge node or runner"
            ),
            (
                "  - connections_survived: {app: echo}", "  - limited: {app: echo, limit: memory}", "expect[7].limited.limit",
                "connections, idle"
            ),
            (
                "  - rotations: {app: echo, at_least: 1}", "  - client_rejected: {app: echo, from: client-1}",
                "expect[5].client_rejected.app",
                "application echo does not lead to an smtp or postfix origin"
            ),
            (
                "  - rotations: {app: echo, at_least: 1}", "  - client_accepted: {app: mail}", "expect[5].client_accepted.from",
                "required"
            ),
            (
                "origin_direct: [\"tcp://mx:25\"]", "origin_direct: [\"tcp://mx:26\"]", "apps[mail].origin_direct[0]",
                "origin 'mx' listens on tcp 25, not tcp 26"
            ),
            (
                "origin_direct: [\"tcp://mx:25\"]", "origin_direct: [\"tcp://mail-server:25\"]", "apps[mail].origin_direct[0]",
                "not an IP address nor an origin"
            ),
            (
                "rotation: {every: 10s, drain: 2s, apps: [echo]}", "rotation: {every: 10s, drain: 2s, apps: [ghost]}", "rotation.apps[0]",
                "no application has id or name 'ghost'"
            ),
            ("topology: topo/small.yaml", "topology: topo/missing.yaml", "", "no such file"),
            ("timeout: 60s", "timeout: 60s\nmystery: 1", "mystery", "unknown field 'mystery'"),
        ] as [(String, String, String, String)])
    func mistakesAreReportedPrecisely(text: String, replacement: String, field: String, message: String) throws {
        #expect(Self.scenario.contains(text), "fixture text not found")
        let path = write(Self.scenario.replacingOccurrences(of: text, with: replacement))
        let result = ConfigLoader().validate(path)
        let error = try #require(result.onlyError(), "expected one error, got \(result.errors)")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func topologyErrorsNameTheTopologyFile() throws {
        scratch.write("topo/broken.yaml", smallTopology.replacingOccurrences(of: "rtt: 9ms", with: "rtt: nine"))
        let path = write(Self.scenario.replacingOccurrences(of: "topology: topo/small.yaml", with: "topology: topo/broken.yaml"))
        let error = try #require(ConfigLoader().validate(path).onlyError())
        #expect(error.location.file.hasSuffix("topo/broken.yaml"))
        #expect(error.field == "links[0].rtt")
    }

    @Test func rulesThatMatchNobodyAreWarnings() {
        let text = Self.scenario.replacingOccurrences(
            of: "  - {mode: allow, configuration: {target: ip, value: 198.18.1.1}}",
            with:
                "  - {mode: block, configuration: {target: country, value: NZ}}\n  - {mode: challenge, configuration: {target: asn, value: 64501}}"
        )
        let result = ConfigLoader().validate(write(text))
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.warnings.map(\.message).contains { $0.contains("country NZ; the rule matches no client") })
        #expect(result.warnings.map(\.message).contains { $0.contains("mode 'challenge' is not enforced") })
    }
}
