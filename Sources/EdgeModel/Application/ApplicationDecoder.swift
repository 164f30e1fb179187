import Foundation

/// Reads application objects (single, list, or a saved API list response) and enforces every
/// rule of the application model, reporting all errors with file, line and field.
enum ApplicationDecoder {
    /// Keys the public API returns that carry nothing edgesim uses.
    static let apiBookkeepingKeys = ["created_on", "modified_on"]

    /// The applications in a document: one object, a list, or `{"result": [...], "success": true}`.
    static func decodeFile(_ root: ConfigNode, path: String, _ diagnostics: Diagnostics) -> [Application] {
        if let items = root.sequence {
            return decodeList(items, path: path, diagnostics)
        }
        if root["result"] != nil, root["protocol"] == nil, let envelope = FieldReader(root, path: path, diagnostics) {
            envelope.ignore("errors", "messages", "result_info")
            if envelope.bool("success") == false {
                envelope.error("the saved API response reports success: false; it holds no applications", field: "success")
            }
            let items = envelope.list("result", required: true) ?? []
            envelope.finish()
            return decodeList(items.map(\.node), path: envelope.fieldPath("result"), diagnostics)
        }
        return decode(root, path: path, diagnostics).map { [$0] } ?? []
    }

    static func decodeList(_ items: [ConfigNode], path: String, _ diagnostics: Diagnostics) -> [Application] {
        var apps: [(app: Application, path: String)] = []
        for (index, item) in items.enumerated() {
            if let app = decode(item, path: "\(path)[\(index)]", diagnostics) { apps.append((app, "\(path)[\(index)]")) }
        }
        checkConflicts(apps, diagnostics)
        return apps.map(\.app)
    }

    static func decode(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics) -> Application? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "an application object") else { return nil }
        let errorsBefore = diagnostics.errorCount
        fields.ignore(contentsOf: apiBookkeepingKeys)

        let edge = fields.value("protocol", required: true, EdgeListener.parse)
        let dns = decodePublicName(fields)
        let proxyProtocol =
            fields.choice("proxy_protocol", ["off": ProxyProtocolMode.off, "v1": .v1, "v2": .v2, "simple": .simple]) ?? .off
        let tls = fields.choice("tls", ["off": TLSMode.off, "flexible": .flexible, "full": .full, "strict": .strict]) ?? .off
        let trafficType = fields.choice("traffic_type", ["direct": TrafficType.direct, "http": .http, "https": .https]) ?? .direct
        let tlsSettings = decodeTLSSettings(fields, tls: tls, location: node.location)
        let ipFirewall = fields.bool("ip_firewall") ?? false
        let smartRouting = fields.bool("argo_smart_routing") ?? false
        let edgeIPs = decodeEdgeIPs(fields)
        let origin = decodeOrigin(fields, edge: edge)
        let id = fields.string("id")
        if let id, id.isEmpty || id.count > 64 || !id.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) }) {
            fields.error("must be 1-64 letters, digits, '-', '_' or '.'", field: "id")
        }

        if let edge {
            if edge.transport == .udp, tls != .off {
                fields.error("tls '\(tls.rawValue)' needs a TCP application; this one is \(edge)", field: "tls")
            }
            if edge.transport == .udp, proxyProtocol == .v1 {
                fields.error("proxy_protocol v1 is TCP only; use v2 or simple for \(edge)", field: "proxy_protocol")
            }
            if edge.transport == .tcp, proxyProtocol == .simple {
                fields.error("proxy_protocol simple is UDP only; use v1 or v2 for \(edge)", field: "proxy_protocol")
            }
            if edge.transport == .udp, trafficType != .direct {
                fields.error("traffic_type '\(trafficType.rawValue)' needs a TCP application", field: "traffic_type")
            }
            if edge.transport == .tcp, trafficType == .https, tls == .off {
                fields.error("traffic_type https needs tls flexible, full or strict (TLS at the edge)", field: "traffic_type")
            }
            if edge.transport == .tcp, trafficType == .http, tls != .off {
                fields.error("traffic_type http is plain HTTP at the edge; with tls \(tls.rawValue) use https", field: "traffic_type")
            }
        }
        if let dns {
            switch (edgeIPs, dns.type) {
            case (.dynamic, .address):
                fields.error("edge_ips type dynamic goes with dns type CNAME, not ADDRESS", field: "edge_ips")
            case (.static, .cname):
                fields.error("edge_ips type static goes with dns type ADDRESS, not CNAME", field: "edge_ips")
            default: break
            }
        }
        fields.finish()
        guard diagnostics.errorCount == errorsBefore, let edge, let dns, let origin else { return nil }
        var app = Application(
            id: id ?? generatedID(dns: dns.name, edge: edge), edge: edge, dns: dns, origin: origin,
            proxyProtocol: proxyProtocol, tls: tls, trafficType: trafficType, ipFirewall: ipFirewall,
            smartRouting: smartRouting, edgeIPs: edgeIPs, location: node.location)
        app.tlsSettings = tlsSettings
        return app
    }

    /// The TLS fields; file paths are taken relative to the file that names them.
    private static func decodeTLSSettings(_ fields: FieldReader, tls: TLSMode, location: SourceLocation) -> EdgeTLSSettings {
        var settings = EdgeTLSSettings()
        let folder = URL(fileURLWithPath: location.file).deletingLastPathComponent()
        func file(_ key: String) -> String? {
            guard let text = fields.string(key) else { return nil }
            let path = text.hasPrefix("/") ? text : folder.appendingPathComponent(text).standardizedFileURL.path
            if !FileManager.default.isReadableFile(atPath: path) {
                fields.error("cannot read '\(path)'", field: key)
            }
            return path
        }
        settings.certificateFile = file("tls_certificate")
        settings.keyFile = file("tls_key")
        settings.originCAFile = file("origin_ca")
        settings.originServerName = fields.value("origin_server_name", HostName.normalize)
        settings.minimumVersion =
            fields.choice("min_tls_version", ["1.1": TLSVersionSetting.v1_1, "1.2": .v1_2, "1.3": .v1_3]) ?? .v1_1
        settings.ciphers = fields.scalars("tls_ciphers") { name in
            TLSCipherSuites.code(name) != nil
                ? .success(name)
                : .failure(ValueError("unknown cipher '\(name)'; known: \(TLSCipherSuites.byName.map(\.key).joined(separator: ", "))"))
        }
        if (settings.certificateFile == nil) != (settings.keyFile == nil), !fields.has("tls_certificate") || !fields.has("tls_key") {
            fields.error("tls_certificate and tls_key go together", field: fields.has("tls_key") ? "tls_key" : "tls_certificate")
        }
        let edgeKeys = ["tls_certificate", "tls_key", "min_tls_version", "tls_ciphers"]
        for key in edgeKeys where tls == .off && fields.has(key) {
            fields.error("\(key) needs tls flexible, full or strict; this application has tls off", field: key)
        }
        for key in ["origin_ca", "origin_server_name"] where tls != .strict && fields.has(key) {
            fields.error("\(key) is for tls strict, which checks the origin's certificate", field: key)
        }
        return settings
    }

    /// A stable id from what identifies the app, so re-reading a file gives the same id.
    static func generatedID(dns: String, edge: EdgeListener) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(dns) \(edge)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func decodePublicName(_ fields: FieldReader) -> PublicName? {
        guard let node = fields.node("dns", required: true),
            let dns = FieldReader(node, path: fields.fieldPath("dns"), fields.diagnostics)
        else { return nil }
        let type = dns.choice("type", ["CNAME": PublicName.RecordType.cname, "ADDRESS": .address], required: true)
        let name = dns.value("name", required: true, HostName.normalize)
        dns.finish()
        guard let type, let name else { return nil }
        return PublicName(type: type, name: name)
    }

    private static func decodeEdgeIPs(_ fields: FieldReader) -> EdgeIPs {
        guard let node = fields.node("edge_ips"),
            let edgeIPs = FieldReader(node, path: fields.fieldPath("edge_ips"), fields.diagnostics)
        else { return .dynamic(.all) }
        defer { edgeIPs.finish() }
        let type = edgeIPs.choice("type", ["dynamic": true, "static": false]) ?? true
        if type {
            if edgeIPs.has("ips") { edgeIPs.error("ips are only for type static", field: "ips") }
            return .dynamic(edgeIPs.choice("connectivity", ["all": EdgeIPs.Connectivity.all, "ipv4": .ipv4, "ipv6": .ipv6]) ?? .all)
        }
        if edgeIPs.has("connectivity") {
            edgeIPs.error("connectivity is only for type dynamic; static addresses say their own family", field: "connectivity")
        }
        let ips =
            edgeIPs.scalars("ips", required: true) { text in
                IPAddress(text).map { .success($0) } ?? .failure(ValueError("'\(text)' is not an IP address"))
            } ?? []
        if edgeIPs.node("ips")?.sequence?.isEmpty == true { edgeIPs.error("type static needs at least one address", field: "ips") }
        if Set(ips).count != ips.count { edgeIPs.error("lists the same address twice", field: "ips") }
        return .static(ips)
    }

    private static func decodeOrigin(_ fields: FieldReader, edge: EdgeListener?) -> Origin? {
        let hasDirect = fields.has("origin_direct")
        let hasDNS = fields.has("origin_dns")
        let originPort = fields.value("origin_port") { PortRange.parse($0) }
        switch (hasDirect, hasDNS) {
        case (true, true):
            fields.error("give exactly one of origin_direct and origin_dns, not both", field: "origin_dns")
            return nil
        case (false, false):
            fields.error("missing origin: give exactly one of origin_direct and origin_dns", field: "origin_direct")
            return nil
        case (true, false):
            if originPort != nil {
                fields.error("origin_port goes with origin_dns; origin_direct entries carry their own ports", field: "origin_port")
            }
            let addresses = fields.scalars("origin_direct", OriginAddress.parse) ?? []
            guard fields.node("origin_direct")?.sequence?.isEmpty != true else {
                fields.error("needs at least one origin address", field: "origin_direct")
                return nil
            }
            for (index, address) in addresses.enumerated() {
                checkOriginPorts(address.ports, edge: edge, fields: fields, field: "origin_direct[\(index)]")
                if let edge, address.transport != edge.transport {
                    fields.error(
                        "\(address) uses \(address.transport.rawValue) but the application is \(edge)", field: "origin_direct[\(index)]")
                }
            }
            return .direct(addresses)
        case (false, true):
            guard let node = fields.node("origin_dns"),
                let dns = FieldReader(node, path: fields.fieldPath("origin_dns"), fields.diagnostics)
            else { return nil }
            let name = dns.value("name", required: true, HostName.normalize)
            let ttl = dns.int("ttl", in: 0...2_147_483_647)
            let type = dns.choice("type", ["": OriginDNS.RecordType.addresses, "A": .a, "AAAA": .aaaa, "SRV": .srv]) ?? .addresses
            dns.finish()
            if type == .srv, originPort != nil {
                fields.error("origin_port must not be set with origin_dns type SRV: the SRV records give the port", field: "origin_port")
            } else if type != .srv, originPort == nil, !fields.has("origin_port") {
                fields.error(
                    "origin_dns of type \(type == .addresses ? "\"\" (A and AAAA)" : type.rawValue) needs origin_port", field: "origin_port"
                )
            }
            if let originPort { checkOriginPorts(originPort, edge: edge, fields: fields, field: "origin_port") }
            guard let name else { return nil }
            return .dns(OriginDNS(name: name, ttl: ttl, type: type, ports: originPort))
        }
    }

    /// An origin range must have as many ports as the edge range; one origin port takes them all.
    private static func checkOriginPorts(_ ports: PortRange, edge: EdgeListener?, fields: FieldReader, field: String) {
        guard let edge, !ports.isSingle, ports.count != edge.ports.count else { return }
        let path = fields.fieldPath(field)
        fields.diagnostics.error(
            "origin range \(ports) has \(ports.count) ports but the edge range \(edge.ports) has \(edge.ports.count); they must match",
            field: path, at: fields.location(of: String(field.prefix { $0 != "[" })))
    }

    /// Two apps may not claim the same name or static address on overlapping ports, nor one id.
    /// Two applications conflict only if they share a name, a static address or an id, so each
    /// is compared with the earlier ones that share one (found by hash), not with all of them.
    static func checkConflicts(_ apps: [(app: Application, path: String)], _ diagnostics: Diagnostics) {
        var byName: [String: [Int]] = [:]
        var byAddress: [IPAddress: [Int]] = [:]
        var byID: [String: [Int]] = [:]
        for (index, (app, path)) in apps.enumerated() {
            var candidates = Set(byName[app.dns.name] ?? []).union(byID[app.id] ?? [])
            let addresses: [IPAddress]
            if case .static(let mine) = app.edgeIPs { addresses = mine } else { addresses = [] }
            for address in addresses { candidates.formUnion(byAddress[address] ?? []) }
            byName[app.dns.name, default: []].append(index)
            byID[app.id, default: []].append(index)
            for address in Set(addresses) { byAddress[address, default: []].append(index) }
            for other in candidates.sorted().map({ apps[$0].app }) {
                let line = other.location.line
                let overlapping = other.edge.transport == app.edge.transport && other.edge.ports.overlaps(app.edge.ports)
                if overlapping, other.dns.name == app.dns.name {
                    diagnostics.error(
                        "\(app.dns.name) \(app.edge) overlaps the ports of the application at line \(line) (\(other.edge))",
                        field: "\(path).protocol", at: app.location)
                } else if overlapping, case .static(let mine) = app.edgeIPs, case .static(let theirs) = other.edgeIPs,
                    let shared = mine.first(where: theirs.contains)
                {
                    diagnostics.error(
                        "static address \(shared) \(app.edge) is already served by the application at line \(line)",
                        field: "\(path).edge_ips", at: app.location)
                } else if other.id == app.id {
                    diagnostics.error(
                        "id '\(app.id)' is already used by the application at line \(line)", field: "\(path).id", at: app.location)
                }
            }
        }
    }
}
