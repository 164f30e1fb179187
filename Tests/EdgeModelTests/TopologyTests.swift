import EdgeModel
import Foundation
import Testing

@Suite struct TopologyTests {
    let scratch = Scratch()

    @Test func smallTopologyIsReadWithDefaults() throws {
        let topology = try ConfigLoader().loadTopology(scratch.write("t.yaml", smallTopology)).value
        #expect(topology.edgeNodes.map(\.name) == ["edge-a", "edge-b"])
        #expect(topology.client(named: "client-1")?.ipv4 == IPAddress("198.18.1.1"))
        #expect(topology.origin(named: "mx")?.ports == [PortRange(port: 25)], "smtp listens on 25 unless told")
        #expect(topology.origin(named: "mx")?.proxyProtocol == .v1)
        #expect(topology.origin(named: "echo")?.transport == .tcp)
        let access = try #require(topology.link(between: "edge-a", "client-1"))
        #expect(access.shape == LinkShape(latency: .milliseconds(2), jitter: .milliseconds(1), loss: 0.005))
        #expect(topology.link(between: "edge-b", "edge-a")?.shape.latency == .microseconds(4500), "rtt is halved into one-way latency")
        #expect(topology.link(between: "edge-a", "echo")?.shape.bandwidth == 1_000_000_000)
        #expect(topology.prefixes.first?.asn == 64501)
        #expect(topology.pools.applicationsIPv4.description == "198.19.0.0/16")
    }

    @Test func everyExampleTopologyIsValid() throws {
        let folder = repositoryRoot.appendingPathComponent("topologies")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for file in files {
            let result = ConfigLoader().validate(folder.appendingPathComponent(file).path)
            #expect(result.kind == .topology)
            #expect(result.issues.isEmpty, "\(file): \(result.issues)")
        }
    }

    /// Replaces one line of the small topology and expects exactly one error about it.
    @Test(
        arguments: [
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}",
                "  - {between: [client-2, edge-b], rtt: 4ms}\n  - {between: [client-2, edge-c], rtt: 4ms}", "links[3].between",
                "'edge-c' is not an edge node, client or origin of this topology (did you mean 'edge-a'?)"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, edge-b]}", "links[2].latency",
                "needs latency (one way) or rtt"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, edge-b], rtt: 4ms, latency: 2ms}", "links[2].rtt",
                "not both"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, client-1], rtt: 4ms}", "links",
                "'client-2' has no link to an edge node"
            ),
            (
                "  - {between: [edge-a, edge-b], rtt: 9ms}",
                "  - {between: [edge-a, edge-b], rtt: 9ms}\n  - {between: [edge-b, edge-b], rtt: 1ms}", "links[1].between",
                "both ends are 'edge-b'"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}",
                "  - {between: [client-2, edge-b], rtt: 4ms}\n  - {between: [edge-b, edge-a], rtt: 4ms}", "links[3].between",
                "already linked at line"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, edge-b], rtt: 4ms, loss: 2}", "links[2].loss",
                "not a percentage"
            ),
            (
                "  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, edge-b], rtt: 4ms, bandwidth: fast}",
                "links[2].bandwidth", "not a quantity like 100mbit"
            ),
            ("  - {between: [client-2, edge-b], rtt: 4ms}", "  - {between: [client-2, edge-b], rtt: 4}", "links[2].rtt", "needs a unit"),
            (
                "  - {name: client-2}", "  - {name: client-2}\n  - {name: edge-a}", "clients[2].name",
                "host name 'edge-a' is already used at line 3"
            ),
            ("  - {name: client-2}", "  - {name: client-2}\n  - {name: client 3}", "clients[2].name", "must be 1-40 letters"),
            (
                "  - {name: client-1, ipv4: 198.18.1.1}", "  - {name: client-1, ipv4: 203.0.113.5}", "clients[0].ipv4",
                "outside the hosts pool 198.18.0.0/16"
            ),
            ("  - {name: client-1, ipv4: 198.18.1.1}", "  - {name: client-1, ipv4: 2001:db8::1}", "clients[0].ipv4", "not an IPv4 address"),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: tcp-echo, ports: [7, 9009-9000]}",
                "origins[0].ports[1]", "starts above its end"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: ftp}", "origins[0].kind",
                "'ftp' is not one of: tcp-echo, udp-echo, http, smtp, postfix, command"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: command, transport: tcp, ports: [7]}",
                "origins[0].command", "kind command needs command"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: tcp-echo, command: [nc, -l]}",
                "origins[0].command", "only for kind command"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: tcp-echo, transport: udp}",
                "origins[0].transport", "kind tcp-echo is tcp"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: tcp-echo, proxy_protocol: simple}",
                "origins[0].proxy_protocol", "simple is UDP only"
            ),
            (
                "  - {name: mx, kind: smtp, proxy_protocol: v1}", "  - {name: mx, kind: smtp, proxy_protocol: v1, checks: [ptr, dkim]}",
                "origins[1].checks[1]", "'dkim' is not one of: ptr, helo, fcrdns"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}", "  - {name: echo, kind: tcp-echo, checks: [ptr]}",
                "origins[0].checks", "checks are only for kinds smtp and postfix"
            ),
            (
                "  - {name: mx, kind: smtp, proxy_protocol: v1}", "  - {name: mx, kind: postfix, proxy_protocol: simple}",
                "origins[1].proxy_protocol", "simple is UDP only"
            ),
            (
                "  - {name: client-1, ipv4: 198.18.1.1}", "  - {name: client-1, ipv4: 198.18.1.1, ptr_confirmed: maybe}",
                "clients[0].ptr_confirmed", "true or false"
            ),
            (
                "  - {name: edge-a, city: Paris}", "  - {name: edge-a, city: Paris, coordinates: {lat: 95, lon: 2}}",
                "edge_nodes[0].coordinates.lat", "from -90 to 90"
            ),
            ("  - {name: edge-a, city: Paris}", "  - {name: edge-a, cty: Paris}", "edge_nodes[0].cty", "did you mean 'city'"),
            (
                "  - {prefix: 198.18.1.0/24, country: FR, asn: 64501}", "  - {prefix: 198.18.1.0/24, country: France}",
                "prefixes[0].country", "not a two-letter country code"
            ),
            (
                "  - {prefix: 198.18.1.0/24, country: FR, asn: 64501}", "  - {prefix: 198.18.1.0/24}", "prefixes[0].prefix",
                "needs country, asn or both"
            ),
            (
                "  - {prefix: 198.18.1.0/24, country: FR, asn: 64501}", "  - {prefix: 198.18.1.1/24, asn: 1}", "prefixes[0].prefix",
                "host bits set"
            ),
            (
                "name: small", "name: small\naddress_pools: {applications_ipv4: 10.0.0.0/8}", "address_pools.applications_ipv4",
                "outside 198.18.0.0/15"
            ),
            (
                "name: small", "name: small\naddress_pools: {applications_ipv4: 198.18.0.0/24}", "address_pools.applications_ipv4",
                "overlaps hosts_ipv4"
            ),
            ("name: small", "name: small\naddress_pools: {hosts_ipv6: 2001:db9::/48}", "address_pools.hosts_ipv6", "outside 2001:db8::/32"),
            // origins serving TLS
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}",
                "  - {name: echo, kind: udp-echo, ports: [7], tls: true}", "origins[0].tls", "tls is for the built-in TCP origins"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}",
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009], tls: {cert: missing.pem, key: /etc/hostname}}",
                "origins[0].tls.cert",
                "cannot read"
            ),
            (
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}",
                "  - {name: echo, kind: tcp-echo, ports: [7, 9000-9009], tls: {cert: /etc/hostname}}",
                "origins[0].tls.key", "missing required field"
            ),
        ] as [(String, String, String, String)])
    func mistakesAreReportedPrecisely(line: String, replacement: String, field: String, message: String) throws {
        #expect(smallTopology.contains(line), "fixture line not found")
        let result = scratch.validate(smallTopology.replacingOccurrences(of: line, with: replacement), as: .topology)
        let error = try #require(result.onlyError(), "expected one error, got \(result.issues)")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.location.line > 0)
    }

    @Test func duplicatePrefixNamesItsFirstLine() {
        let text = smallTopology + "\n  - {prefix: 198.18.1.0/24, asn: 64502}"
        let error = scratch.validate(text, as: .topology).onlyError()
        #expect(error?.message == "prefix 198.18.1.0/24 is already listed at line 18")
        #expect(error?.location.line == 19)
    }
}

@Suite struct SmartRoutingSettingsTests {
    let scratch = Scratch()

    @Test func defaultsAndGivenValues() throws {
        let plain = try ConfigLoader().loadTopology(scratch.write("t.yaml", smallTopology)).value
        #expect(plain.smartRouting == SmartRoutingSettings())
        #expect(plain.smartRouting.probeInterval == .seconds(1))
        let given = try ConfigLoader().loadTopology(
            scratch.write("s.yaml", smallTopology + "\nsmart_routing: {probe_interval: 250ms, port: 7400, max_relays: 1}\n")
        ).value
        #expect(given.smartRouting.probeInterval == .milliseconds(250))
        #expect(given.smartRouting.port == 7400)
        #expect(given.smartRouting.maximumRelays == 1)
    }

    @Test(arguments: [
        ("smart_routing: {probe_interval: 10ms}", "probe_interval must be from 100ms to 60s"),
        ("smart_routing: {max_relays: 3}", "max_relays"),
        ("smart_routing: {probe: 1s}", "probe"),
    ])
    func badSettingsAreNamed(_ line: String, _ expected: String) {
        let result = scratch.validate(smallTopology + "\n" + line + "\n", as: .topology)
        #expect(result.errors.count == 1, "\(result.issues)")
        #expect(result.errors.first?.description.contains(expected) == true, "\(result.issues)")
        #expect(result.errors.first?.description.contains("smart_routing") == true, "\(result.issues)")
    }
}

@Suite struct AnycastSettingsTests {
    let scratch = Scratch()

    static let text = """
        name: t
        edge_nodes: [{name: a, region: in}, {name: b, region: in}, {name: c, region: ap}]
        clients: [{name: x}]
        links:
          - {between: [x, a], rtt: 2ms}
          - {between: [x, c], rtt: 30ms}
          - {between: [a, c], rtt: 20ms}
        """

    @Test func excludedRegionsAndNodesDoNotAnnounce() throws {
        let topology = try ConfigLoader().loadTopology(scratch.write("t.yaml", Self.text + "\nanycast: {exclude_regions: [in]}\n")).value
        #expect(topology.edgeNodes.map(\.name).filter(topology.announces) == ["c"])
        let nodes = try ConfigLoader().loadTopology(scratch.write("n.yaml", Self.text + "\nanycast: {exclude_nodes: [b]}\n")).value
        #expect(nodes.edgeNodes.map(\.name).filter(nodes.announces) == ["a", "c"])
    }

    @Test(arguments: [
        ("anycast: {exclude_regions: [eu]}", "'eu' is no edge node's region (regions: ap, in)"),
        ("anycast: {exclude_nodes: [z]}", "'z' is not an edge node"),
        ("anycast: {exclude_regions: [in, ap]}", "every edge node is excluded"),
    ])
    func badExclusionsAreNamed(_ line: String, _ expected: String) {
        let result = scratch.validate(Self.text + "\n" + line + "\n", as: .topology)
        #expect(result.errors.count == 1, "\(result.issues)")
        #expect(result.errors.first?.description.contains(expected) == true, "\(result.issues)")
    }

    @Test func anOriginServesTLSWithAnIssuedCertificateOrItsOwnFiles() throws {
        _ = scratch.write("origin.pem", "x")
        let issued = smallTopology.replacingOccurrences(
            of: "{name: echo, kind: tcp-echo, ports: [7, 9000-9009]}",
            with: "{name: echo, kind: tcp-echo, ports: [7, 9000-9009], tls: true}")
        #expect(try ConfigLoader().loadTopology(scratch.write("issued.yaml", issued)).value.origin(named: "echo")?.tls == .issued)
        let own = smallTopology.replacingOccurrences(
            of: "{name: mx, kind: smtp, proxy_protocol: v1}",
            with: "{name: mx, kind: smtp, proxy_protocol: v1, tls: {cert: origin.pem, key: origin.pem}}")
        let path = scratch.folder.appendingPathComponent("origin.pem").path
        #expect(
            try ConfigLoader().loadTopology(scratch.write("own.yaml", own)).value.origin(named: "mx")?.tls
                == .files(certificate: path, key: path))
    }
}
