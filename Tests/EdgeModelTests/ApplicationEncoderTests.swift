import EdgeModel
import Foundation
import Testing

@Suite struct ApplicationEncoderTests {
    let scratch = Scratch()

    /// Every shape an application can take, read from a file.
    static let variety = """
        - {id: plain, protocol: tcp/22, dns: {type: CNAME, name: ssh.example.com}, origin_direct: ["tcp://198.18.0.10:22"]}
        - id: ranged
          protocol: tcp/1000-2000
          dns: {type: CNAME, name: range.example.com}
          origin_direct: ["tcp://198.18.0.10:3000-4000", "tcp://[2001:db8::10]:3000-4000"]
          proxy_protocol: v2
          ip_firewall: true
          argo_smart_routing: true
          edge_ips: {type: dynamic, connectivity: ipv6}
        - id: named
          protocol: udp/53
          dns: {type: ADDRESS, name: dns.example.com}
          origin_dns: {name: origin.example.net, ttl: 60, type: A}
          origin_port: 5353
          proxy_protocol: simple
          edge_ips: {type: static, ips: [198.19.7.1, "2001:db8:7::1"]}
        - id: web
          protocol: tcp/443
          dns: {type: CNAME, name: www.example.com}
          origin_dns: {name: web.example.net}
          origin_port: 8443-8443
          tls: strict
          traffic_type: https
          min_tls_version: "1.2"
          tls_ciphers: [ECDHE-RSA-AES128-GCM-SHA256, AES128-SHA]
          origin_server_name: web.example.net
        """

    @Test func anApplicationWrittenAsAnAPIObjectReadsBackTheSame() throws {
        let apps = try ConfigLoader().loadApplications(scratch.write("apps.yaml", Self.variety)).value
        #expect(apps.count == 4)
        for app in apps {
            let again = try ConfigLoader().decodeApplication(app.spectrumJSON, source: "again", alongside: [])
            var expected = app
            expected.location = again.location
            #expect(again == expected, "\(String(decoding: app.spectrumJSON, as: UTF8.self))")
        }
    }

    @Test func theObjectHasSpectrumsFieldNamesAndValues() throws {
        let apps = try ConfigLoader().loadApplications(scratch.write("apps.yaml", Self.variety)).value
        let named = try #require(apps.first { $0.id == "named" }).spectrumObject
        #expect(named["protocol"] as? String == "udp/53")
        #expect(named["origin_port"] as? Int == 5353)
        #expect((named["origin_dns"] as? [String: Any])?["ttl"] as? Int == 60)
        #expect((named["edge_ips"] as? [String: Any])?["ips"] as? [String] == ["198.19.7.1", "2001:db8:7::1"])
        let ranged = try #require(apps.first { $0.id == "ranged" }).spectrumObject
        #expect(ranged["origin_direct"] as? [String] == ["tcp://198.18.0.10:3000-4000", "tcp://[2001:db8::10]:3000-4000"])
        #expect(String(decoding: apps[1].spectrumJSON, as: UTF8.self).contains("\"tcp://198.18.0.10:3000-4000\""), "slashes unescaped")
    }

    @Test func oneObjectFromABodyIsCheckedAsAFileAndAgainstTheOthers() throws {
        let loader = ConfigLoader()
        let existing = try loader.loadApplications(scratch.write("apps.yaml", Self.variety)).value
        let body = Array(
            #"{"protocol": "tcp/22", "dns": {"type": "CNAME", "name": "ssh.example.com"}, "origin_direct": ["tcp://198.18.0.11:22"]}"#.utf8)
        #expect(throws: ConfigErrors.self) { try loader.decodeApplication(body, source: "body", alongside: existing) }
        do {
            _ = try loader.decodeApplication(body, source: "body", alongside: existing)
        } catch {
            #expect(error.issues.map(\.message).contains { $0.contains("overlaps the ports") }, "\(error.issues)")
        }
        // Alone it is fine.
        #expect(try loader.decodeApplication(body, source: "body", alongside: []).dns.name == "ssh.example.com")

        let bad = Array(#"{"protocol": "tcp/70000", "dns": {"type": "CNAME", "name": "x.example.com"}}"#.utf8)
        do {
            _ = try loader.decodeApplication(bad, source: "body", alongside: [])
            Issue.record("an invalid body was accepted")
        } catch {
            let fields = Set(error.issues.map(\.field))
            #expect(fields.contains("protocol") && fields.contains("origin_direct"), "\(error.issues)")
            #expect(error.issues.allSatisfy { $0.location.file == "body" })
        }
        for broken in ["[1, 2]", "{", "\"text\""] {
            #expect(throws: ConfigErrors.self) { try loader.decodeApplication(Array(broken.utf8), source: "body", alongside: []) }
        }
    }

    @Test func topologyOriginNamesAreForFleetsOnly() throws {
        let body = Array(
            #"{"protocol": "tcp/22", "dns": {"type": "CNAME", "name": "a.example.com"}, "origin_direct": ["tcp://origin-a:22"]}"#.utf8)
        #expect(throws: ConfigErrors.self) { try ConfigLoader().decodeApplication(body, source: "body", alongside: []) }
        let app = try ConfigLoader().decodeApplication(body, source: "body", alongside: [], topologyHosts: true)
        #expect(app.origin == .direct([OriginAddress(transport: .tcp, host: .topologyHost("origin-a"), ports: PortRange(port: 22))]))
    }
}
