import EdgeModel
import Testing

/// `family:` on traffic steps: which of an application's addresses a client uses.
@Suite struct TrafficFamilyTests {
    let scratch = Scratch()

    func load(
        _ traffic: String, connectivity: String = "all", tls: String = "off", expect: String = "", trafficType: String = "direct"
    ) throws -> (TrafficStep?, ValidationResult) {
        scratch.write("topo/small.yaml", smallTopology)
        let path = scratch.write(
            "scenarios/family.yaml",
            """
            name: family
            topology: ../topo/small.yaml
            timeout: 30s
            apps:
              - id: echo
                protocol: tcp/7000
                dns: {type: CNAME, name: echo.example}
                origin_direct: ["tcp://echo:9000"]
                edge_ips: {type: dynamic, connectivity: \(connectivity)}
                tls: "\(tls)"
                traffic_type: \(trafficType)
            timeline:
              - at: 0s
                traffic: \(traffic)
            \(expect)
            """)
        let result = ConfigLoader().validate(path)
        guard result.errors.isEmpty else { return (nil, result) }
        guard case .traffic(let step) = try ConfigLoader().loadScenario(path).value.timeline.first?.step else { return (nil, result) }
        return (step, result)
    }

    @Test func ipv4UnlessSaidOrTheApplicationHasOnlyIPv6() throws {
        #expect(try load("{from: client-1, app: echo}").0?.family == .ipv4)
        #expect(try load("{from: client-1, app: echo, family: any}").0?.family == .any)
        #expect(try load("{from: client-1, app: echo, family: ipv6}").0?.family == .ipv6)
        #expect(try load("{from: client-1, app: echo}", connectivity: "ipv6").0?.family == .ipv6)
    }

    @Test func aFamilyTheApplicationLacksIsAnError() throws {
        let (_, v6) = try load("{from: client-1, app: echo, family: ipv6}", connectivity: "ipv4")
        let error = try #require(v6.onlyError())
        #expect(error.field == "timeline[0].traffic.family")
        #expect(error.message.contains("application echo has no IPv6 address"), "\(error.message)")
        let (_, v4) = try load("{from: client-1, app: echo, family: ipv4}", connectivity: "ipv6")
        #expect(v4.onlyError()?.message.contains("has no IPv4 address") == true)
        let (_, odd) = try load("{from: client-1, app: echo, family: ipx}")
        #expect(odd.onlyError()?.field == "timeline[0].traffic.family")
    }

    /// `tls_version` pins a TLS client's version; it and the check of the same name need edge TLS.
    @Test func tlsVersionIsForApplicationsWithEdgeTLS() throws {
        #expect(try load("{from: client-1, app: echo, tls_version: '1.2'}", tls: "flexible").0?.tlsVersion == .v1_2)
        #expect(try load("{from: client-1, app: echo}", tls: "strict").0?.tlsVersion == nil)
        let (_, off) = try load("{from: client-1, app: echo, tls_version: '1.2'}")
        #expect(off.errors.first?.message.contains("has tls off") == true, "\(off.issues)")
        let check = "expect:\n  - tls_version: {app: echo, version: '1.3'}"
        #expect(try load("{from: client-1, app: echo}", tls: "full", expect: check).1.errors.isEmpty)
        let (_, unchecked) = try load("{from: client-1, app: echo}", expect: check)
        #expect(unchecked.errors.first?.field.hasSuffix("tls_version.app") == true, "\(unchecked.issues)")
    }

    /// `http_status` and `header_seen` are for http and https applications.
    @Test func httpChecksNeedAnHTTPApplication() throws {
        let checks = "expect:\n  - http_status: {app: echo, status: 200}\n  - header_seen: {app: echo}"
        let (_, http) = try load("{from: client-1, app: echo}", expect: checks, trafficType: "http")
        #expect(http.errors.isEmpty, "\(http.issues)")
        let scenario = try ConfigLoader().loadScenario(scratch.folder.appendingPathComponent("scenarios/family.yaml").path).value
        #expect(scenario.expectations.contains(.headerSeen(scope: TrafficScope(application: "echo"), header: "CF-Connecting-IP")))
        #expect(scenario.expectations.contains(.httpStatus(scope: TrafficScope(application: "echo"), status: 200)))
        let (_, direct) = try load("{from: client-1, app: echo}", expect: checks)
        #expect(direct.errors.count == 2 && direct.errors.allSatisfy { $0.message.contains("has traffic_type direct") }, "\(direct.issues)")
    }
}
