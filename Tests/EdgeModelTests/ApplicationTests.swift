import EdgeModel
import Testing

@Suite struct ApplicationTests {
    let scratch = Scratch()

    static let valid = """
        protocol: tcp/22
        dns: {type: CNAME, name: ssh.example.com}
        origin_direct: ["tcp://198.18.0.10:22"]
        """

    @Test func apiObjectIsReadWithEveryField() throws {
        let json = """
            {"id": "ea95132c15732412d22c1476fa83f27a", "protocol": "tcp/1000-2000",
             "dns": {"type": "CNAME", "name": "Range.Example.com"},
             "origin_direct": ["tcp://198.18.0.10:3000-4000", "tcp://[2001:db8::10]:3000-4000"],
             "proxy_protocol": "v2", "tls": "full", "traffic_type": "direct", "ip_firewall": true,
             "argo_smart_routing": true, "edge_ips": {"type": "dynamic", "connectivity": "ipv6"},
             "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z"}
            """
        let apps = try ConfigLoader().loadApplications(scratch.write("app.json", json)).value
        let app = try #require(apps.first)
        #expect(app.id == "ea95132c15732412d22c1476fa83f27a")
        #expect(app.edge == EdgeListener(transport: .tcp, ports: PortRange(first: 1000, last: 2000)!))
        #expect(app.dns == PublicName(type: .cname, name: "range.example.com"))
        #expect(
            app.origin
                == .direct([
                    OriginAddress(transport: .tcp, host: .ip(IPAddress("198.18.0.10")!), ports: PortRange(first: 3000, last: 4000)!),
                    OriginAddress(transport: .tcp, host: .ip(IPAddress("2001:db8::10")!), ports: PortRange(first: 3000, last: 4000)!),
                ]))
        #expect(app.proxyProtocol == .v2)
        #expect(app.tls == .full)
        #expect(app.ipFirewall && app.smartRouting)
        #expect(app.edgeIPs == .dynamic(.ipv6))
    }

    @Test func defaultsAndGeneratedIdAreStable() throws {
        let path = scratch.write("app.yaml", Self.valid)
        let first = try ConfigLoader().loadApplications(path).value[0]
        let second = try ConfigLoader().loadApplications(path).value[0]
        #expect(first.id == second.id)
        #expect(first.id.count == 16)
        #expect(first.proxyProtocol == .off && first.tls == .off && first.trafficType == .direct)
        #expect(!first.ipFirewall && !first.smartRouting)
        #expect(first.edgeIPs == .dynamic(.all))
    }

    @Test func yamlPlainOffStaysTheWordOff() throws {
        let apps = try ConfigLoader().loadApplications(scratch.write("app.yaml", Self.valid + "\nproxy_protocol: off\ntls: off\n")).value
        #expect(apps[0].proxyProtocol == .off)
    }

    @Test func savedApiListResponseIsAccepted() throws {
        let json = """
            {"result": [
              {"protocol": "tcp/22", "dns": {"type": "CNAME", "name": "a.example.com"}, "origin_direct": ["tcp://198.18.0.1:22"]},
              {"protocol": "udp/53", "dns": {"type": "ADDRESS", "name": "b.example.com"},
               "origin_dns": {"name": "origin.example.com", "ttl": 600, "type": "A"}, "origin_port": 53,
               "proxy_protocol": "simple", "edge_ips": {"type": "static", "ips": ["198.19.0.5", "2001:db8:a::5"]}}
            ], "success": true, "errors": [], "messages": [], "result_info": {"page": 1}}
            """
        let apps = try ConfigLoader().loadApplications(scratch.write("list.json", json)).value
        #expect(apps.count == 2)
        #expect(apps[1].origin == .dns(OriginDNS(name: "origin.example.com", ttl: 600, type: .a, ports: PortRange(port: 53))))
        #expect(apps[1].edgeIPs == .static([IPAddress("198.19.0.5")!, IPAddress("2001:db8:a::5")!]))
    }

    @Test func failedApiResponseIsReported() {
        let result = scratch.validate(#"{"result": [], "success": false, "errors": [{"code": 10000}]}"#, as: .applications, name: "x.json")
        #expect(result.onlyError()?.message.contains("success: false") == true)
    }

    /// Each rule of the application model, broken once: the field named and the reason given.
    @Test(
        arguments: [
            // exactly one origin
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\norigin_dns: {name: o.example}\norigin_port: 22",
                "origin_dns", "exactly one of origin_direct and origin_dns, not both"
            ),
            ("protocol: tcp/22\ndns: {type: CNAME, name: a.example}", "origin_direct", "missing origin"),
            // origin_dns other than SRV needs origin_port
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_dns: {name: o.example, type: A}", "origin_port",
                "needs origin_port"
            ),
            ("protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_dns: {name: o.example}", "origin_port", "needs origin_port"),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_dns: {name: _x._tcp.o.example, type: SRV}\norigin_port: 22",
                "origin_port", "SRV records give the port"
            ),
            // IPv6 origin in brackets
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://2001:db8::1:22']", "origin_direct[0]",
                "must be in brackets"
            ),
            // range sizes match
            (
                "protocol: tcp/1000-2000\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:3000-3999']",
                "origin_direct[0]", "has 1000 ports but the edge range 1000-2000 has 1001"
            ),
            (
                "protocol: tcp/1000-1001\ndns: {type: CNAME, name: a.example}\norigin_dns: {name: o.example}\norigin_port: 3000-3002",
                "origin_port", "must match"
            ),
            // edge_ips type goes with dns type
            (
                "protocol: tcp/22\ndns: {type: ADDRESS, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "edge_ips",
                "dynamic goes with dns type CNAME"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\nedge_ips: {type: static, ips: [198.19.0.1]}",
                "edge_ips", "static goes with dns type ADDRESS"
            ),
            // ports and ranges
            (
                "protocol: tcp/0\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "protocol",
                "ports must be 1-65535"
            ),
            (
                "protocol: tcp/70000\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "protocol",
                "ports must be 1-65535"
            ),
            (
                "protocol: tcp/30-20\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "protocol",
                "starts above its end"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:99999']", "origin_direct[0]",
                "ports must be 1-65535"
            ),
            // TLS and PROXY protocol by transport
            (
                "protocol: udp/53\ndns: {type: CNAME, name: a.example}\norigin_direct: ['udp://198.18.0.1:53']\ntls: flexible", "tls",
                "needs a TCP application"
            ),
            (
                "protocol: udp/53\ndns: {type: CNAME, name: a.example}\norigin_direct: ['udp://198.18.0.1:53']\nproxy_protocol: v1",
                "proxy_protocol", "v1 is TCP only"
            ),
            // TLS settings
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntraffic_type: https",
                "traffic_type", "https needs tls flexible, full or strict"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntraffic_type: http\ntls: full",
                "traffic_type", "with tls full use https"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: off\nmin_tls_version: '1.2'",
                "min_tls_version", "needs tls flexible, full or strict"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: full\norigin_ca: /etc/hostname",
                "origin_ca", "is for tls strict"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: flexible\nmin_tls_version: '1.0'",
                "min_tls_version", "not one of: 1.1, 1.2, 1.3"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: flexible\ntls_ciphers: [ECDHE-RSA-AES128-GCM-SHA256, RC4-MD5]",
                "tls_ciphers[1]", "unknown cipher 'RC4-MD5'"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: flexible\ntls_certificate: /nonexistent/cert.pem\ntls_key: /etc/hostname",
                "tls_certificate", "cannot read '/nonexistent/cert.pem'"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: flexible\ntls_key: /etc/hostname",
                "tls_key", "tls_certificate and tls_key go together"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\nproxy_protocol: simple",
                "proxy_protocol", "simple is UDP only"
            ),
            // values and names
            (
                "protocol: sctp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "protocol",
                "not transport/port"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['udp://198.18.0.1:22']", "origin_direct[0]",
                "uses udp but the application is tcp/22"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\ntls: maybe", "tls",
                "'maybe' is not one of: off, flexible, full, strict"
            ),
            (
                "protocol: tcp/22\ndns: {type: TXT, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "dns.type",
                "not one of: CNAME, ADDRESS"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: -a.example}\norigin_direct: ['tcp://198.18.0.1:22']", "dns.name",
                "not a valid host name"
            ),
            ("protocol: tcp/22\ndns: {type: CNAME}\norigin_direct: ['tcp://198.18.0.1:22']", "dns.name", "missing required field"),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\nip_firewall: sometimes",
                "ip_firewall", "must be true or false"
            ),
            (
                "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\nproxy_protcol: v1",
                "proxy_protcol", "did you mean 'proxy_protocol'"
            ),
            (
                "protocol: tcp/22\ndns: {type: ADDRESS, name: a.example}\norigin_direct: ['tcp://198.18.0.1:22']\nedge_ips: {type: static, ips: [not-an-ip]}",
                "edge_ips.ips[0]", "not an IP address"
            ),
            ("protocol: tcp/22\ndns: {type: CNAME, name: a.example}\norigin_direct: []", "origin_direct", "at least one origin"),
            (
                "protocol: udp/53\ndns: {type: CNAME, name: a.example}\norigin_direct: ['udp://198.18.0.1:53']\ntraffic_type: http",
                "traffic_type", "needs a TCP application"
            ),
        ] as [(String, String, String)])
    func eachRuleIsEnforcedWithFieldAndReason(yaml: String, field: String, message: String) throws {
        let result = scratch.validate(yaml, as: .applications)
        let error = try #require(result.onlyError(), "expected one error, got \(result.issues)")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.location.line > 0, "errors name a line")
        #expect(error.location.file.hasSuffix("input.yaml"))
    }

    @Test func everyErrorInAFileIsReported() {
        let yaml = """
            - protocol: tcp/22
              dns: {type: CNAME, name: a.example}
              origin_direct: ['tcp://198.18.0.1:22']
            - protocol: tcp/23
              dns: {type: CNAME, name: a.example}
              origin_direct: ['tcp://198.18.0.1:22']
              tls: sometimes
            - protocol: udp/53
              dns: {type: CNAME, name: b.example}
              origin_direct: ['udp://198.18.0.1:53']
              proxy_protocol: v1
            - protocol: tcp/22
              dns: {type: CNAME, name: a.example}
              origin_direct: ['tcp://198.18.0.2:22']
            """
        let result = scratch.validate(yaml, as: .applications)
        #expect(result.errors.map(\.field) == ["[1].tls", "[2].proxy_protocol", "[3].protocol"])
        #expect(result.errors.map(\.location.line) == [7, 11, 12])
        #expect(result.errors[2].message.contains("overlaps the ports of the application at line 1"))
    }

    @Test func duplicateIdsAndSharedStaticAddressesConflict() {
        let yaml = """
            - {id: one, protocol: tcp/22, dns: {type: ADDRESS, name: a.example}, origin_direct: ['tcp://198.18.0.1:22'], edge_ips: {type: static, ips: [198.19.0.9]}}
            - {id: two, protocol: tcp/20-30, dns: {type: ADDRESS, name: b.example}, origin_direct: ['tcp://198.18.0.1:22'], edge_ips: {type: static, ips: [198.19.0.9]}}
            - {id: one, protocol: udp/53, dns: {type: ADDRESS, name: c.example}, origin_direct: ['udp://198.18.0.1:53'], edge_ips: {type: static, ips: [198.19.0.9]}}
            """
        let result = scratch.validate(yaml, as: .applications)
        #expect(result.errors.count == 2)
        #expect(result.errors.contains { $0.message.contains("id 'one' is already used") })
        #expect(result.errors.contains { $0.message.contains("static address 198.19.0.9 tcp/20-30 is already served") })
    }

    @Test func topologyHostOriginsNeedAScenario() throws {
        let path = scratch.write("apps.yaml", "protocol: tcp/25\ndns: {type: CNAME, name: mail.example}\norigin_direct: ['tcp://mx:25']")
        #expect(ConfigLoader().validate(path).warnings.count == 1)
        #expect(throws: ConfigErrors.self) { try ConfigLoader().loadApplications(path) }
    }

    /// File paths are taken relative to the applications file; every TLS field reads back.
    @Test func tlsSettingsAreReadWithPathsBesideTheFile() throws {
        let certificate = scratch.write("certs/app.pem", "x")
        _ = scratch.write("certs/app-key.pem", "x")
        let file = scratch.write(
            "apps.yaml",
            Self.valid + """

                tls: strict
                tls_certificate: certs/app.pem
                tls_key: certs/app-key.pem
                min_tls_version: "1.2"
                tls_ciphers: [ECDHE-ECDSA-AES128-GCM-SHA256]
                origin_ca: certs/app.pem
                origin_server_name: Origin.Example
                """)
        let app = try #require(try ConfigLoader().loadApplications(file).value.first)
        #expect(app.tlsSettings.certificateFile == certificate)
        #expect(app.tlsSettings.keyFile?.hasSuffix("/certs/app-key.pem") == true && app.tlsSettings.keyFile?.hasPrefix("/") == true)
        #expect(app.tlsSettings.minimumVersion == .v1_2)
        #expect(app.tlsSettings.ciphers == ["ECDHE-ECDSA-AES128-GCM-SHA256"])
        #expect(app.tlsSettings.originCAFile == certificate)
        #expect(app.tlsSettings.originServerName == "origin.example")
    }
}
