import Foundation

enum TopologyDecoder {
    static func decode(_ root: ConfigNode, _ diagnostics: Diagnostics) -> Topology? {
        guard let fields = FieldReader(root, path: "", diagnostics, what: "a topology (a mapping with name, edge_nodes, links...)") else {
            return nil
        }
        defer { fields.finish() }
        let errorsBefore = diagnostics.errorCount
        let name = fields.value("name", required: true, hostLikeName) ?? ""
        let description = fields.string("description") ?? ""
        var names: [String: SourceLocation] = [:]
        let pools = decodePools(fields)
        var addresses: [IPAddress: String] = [:]

        /// A fixed host address must lie in the hosts pool and belong to one host only.
        func fixedAddress(_ fields: FieldReader, _ key: String, host: String?, v4: Bool) -> IPAddress? {
            guard let value = fields.value(key, { address($0, v4: v4) }) else { return nil }
            let pool = v4 ? pools.hostsIPv4 : pools.hostsIPv6
            if !pool.contains(value) { fields.error("\(value) is outside the hosts pool \(pool)", field: key) }
            if let other = addresses[value] { fields.error("\(value) is already the address of '\(other)'", field: key) }
            addresses[value] = host ?? "?"
            return value
        }

        func register(_ name: String, _ path: String, _ location: SourceLocation) {
            if let first = names[name] {
                diagnostics.error("host name '\(name)' is already used at line \(first.line)", field: path, at: location)
            }
            names[name] = location
        }

        let edgeNodes = (fields.list("edge_nodes", required: true) ?? []).compactMap { item -> EdgeNodeSpec? in
            guard let node = FieldReader(item.node, path: item.path, diagnostics, what: "an edge node {name, city, ...}") else {
                return nil
            }
            defer { node.finish() }
            guard let name = node.value("name", required: true, hostLikeName) else { return nil }
            register(name, item.path + ".name", node.location(of: "name"))
            return EdgeNodeSpec(
                name: name, city: node.string("city"), region: node.string("region"),
                coordinates: decodeCoordinates(node))
        }
        if edgeNodes.isEmpty, fields.has("edge_nodes") {
            fields.error("a topology needs at least one edge node", field: "edge_nodes")
        }
        let clients = (fields.list("clients") ?? []).compactMap { item -> ClientSpec? in
            guard let client = FieldReader(item.node, path: item.path, diagnostics, what: "a client {name, city, ...}") else { return nil }
            defer { client.finish() }
            guard let name = client.value("name", required: true, hostLikeName) else { return nil }
            register(name, item.path + ".name", client.location(of: "name"))
            return ClientSpec(
                name: name, city: client.string("city"), ptr: client.value("ptr", HostName.normalize),
                ptrConfirmed: client.bool("ptr_confirmed") ?? true,
                ipv4: fixedAddress(client, "ipv4", host: name, v4: true), ipv6: fixedAddress(client, "ipv6", host: name, v4: false),
                coordinates: decodeCoordinates(client))
        }
        let origins = (fields.list("origins") ?? []).compactMap { item -> OriginSpec? in
            // Registered even when the rest is invalid, so links to it do not report it again.
            if let name = item.node["name"]?.scalar, case .success = hostLikeName(name) {
                register(name, item.path + ".name", item.node["name"]?.location ?? item.node.location)
            }
            return decodeOrigin(item.node, path: item.path, diagnostics, fixedAddress)
        }
        let links = (fields.list("links") ?? []).compactMap { decodeLink($0.node, path: $0.path, diagnostics) }
        var prefixLines: [IPPrefix: Int] = [:]
        let prefixes = (fields.list("prefixes") ?? []).compactMap { item -> PrefixInfo? in
            guard let row = decodePrefix(item.node, path: item.path, diagnostics) else { return nil }
            if let line = prefixLines[row.prefix] {
                diagnostics.error(
                    "prefix \(row.prefix) is already listed at line \(line)", field: item.path + ".prefix", at: item.node.location)
            }
            prefixLines[row.prefix] = item.node.location.line
            return row
        }

        checkLinks(
            links, known: names, edgeNodes: Set(edgeNodes.map(\.name)), clients: clients.map(\.name), origins: origins.map(\.name),
            diagnostics)
        let smartRouting = decodeSmartRouting(fields)
        let anycast = decodeAnycast(fields, edgeNodes: edgeNodes)
        guard diagnostics.errorCount == errorsBefore else { return nil }
        return Topology(
            name: name, description: description, edgeNodes: edgeNodes, clients: clients, origins: origins,
            links: links, pools: pools, prefixes: prefixes, smartRouting: smartRouting, anycast: anycast, location: root.location)
    }

    /// Host and topology names: 1-40 letters, digits, '-' or '_', starting with a letter or digit.
    static func hostLikeName(_ text: String) -> Result<String, ValueError> {
        guard (1...40).contains(text.count), text.first!.isASCII, text.first!.isLetter || text.first!.isNumber,
            text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else {
            return .failure(ValueError("'\(text)' must be 1-40 letters, digits, '-' or '_', starting with a letter or digit"))
        }
        return .success(text)
    }

    static func address(_ text: String, v4: Bool) -> Result<IPAddress, ValueError> {
        guard let address = IPAddress(text), address.isIPv4 == v4 else {
            return .failure(ValueError("'\(text)' is not an \(v4 ? "IPv4" : "IPv6") address"))
        }
        return .success(address)
    }

    private static func decodeAnycast(_ topology: FieldReader, edgeNodes: [EdgeNodeSpec]) -> AnycastSettings {
        var settings = AnycastSettings()
        guard let value = topology.node("anycast"),
            let fields = FieldReader(
                value, path: topology.fieldPath("anycast"), topology.diagnostics, what: "{exclude_regions, exclude_nodes}")
        else { return settings }
        defer { fields.finish() }
        let regions = Set(edgeNodes.compactMap(\.region))
        let names = edgeNodes.map(\.name)
        settings.excludedRegions =
            fields.scalars("exclude_regions") { text in
                regions.contains(text)
                    ? .success(text)
                    : .failure(ValueError("'\(text)' is no edge node's region (regions: \(regions.sorted().joined(separator: ", ")))"))
            } ?? []
        settings.excludedNodes =
            fields.scalars("exclude_nodes") { text in
                names.contains(text) ? .success(text) : .failure(ValueError("'\(text)' is not an edge node of this topology"))
            } ?? []
        let announcing = edgeNodes.filter { node in
            !settings.excludedNodes.contains(node.name) && !(node.region.map(settings.excludedRegions.contains) ?? false)
        }
        if announcing.isEmpty, !edgeNodes.isEmpty {
            fields.error("every edge node is excluded: at least one must announce the application addresses", field: "exclude_regions")
        }
        return settings
    }

    private static func decodeSmartRouting(_ topology: FieldReader) -> SmartRoutingSettings {
        var settings = SmartRoutingSettings()
        guard let value = topology.node("smart_routing"),
            let fields = FieldReader(
                value, path: topology.fieldPath("smart_routing"), topology.diagnostics, what: "{probe_interval, port, max_relays}")
        else { return settings }
        defer { fields.finish() }
        if let interval = fields.duration("probe_interval") {
            if interval < .milliseconds(100) || interval > .seconds(60) {
                fields.error("probe_interval must be from 100ms to 60s", field: "probe_interval")
            } else {
                settings.probeInterval = interval
            }
        }
        if let port = fields.int("port", in: 1...65535) { settings.port = UInt16(port) }
        if let relays = fields.int("max_relays", in: 0...2) { settings.maximumRelays = relays }
        return settings
    }

    private static func decodeCoordinates(_ node: FieldReader) -> Coordinates? {
        guard let value = node.node("coordinates"),
            let fields = FieldReader(value, path: node.fieldPath("coordinates"), node.diagnostics, what: "{lat, lon}")
        else { return nil }
        defer { fields.finish() }
        func degrees(_ key: String, _ limit: Double) -> Double? {
            fields.value(key, required: true) { text in
                guard let value = Double(text), abs(value) <= limit else {
                    return .failure(ValueError("must be a number from -\(Int(limit)) to \(Int(limit)), found '\(text)'"))
                }
                return .success(value)
            }
        }
        let lat = degrees("lat", 90)
        let lon = degrees("lon", 180)
        guard let lat, let lon else { return nil }
        return Coordinates(latitude: lat, longitude: lon)
    }

    /// `tls: true` or `tls: {cert, key}` (paths beside the topology file), for built-in TCP origins.
    private static func decodeOriginTLS(_ fields: FieldReader, kind: OriginSpec.Kind?) -> OriginTLS? {
        guard let node = fields.node("tls") else { return nil }
        if let kind, ![.tcpEcho, .http, .smtp].contains(kind) {
            fields.error("tls is for the built-in TCP origins (tcp-echo, http, smtp); kind \(kind.rawValue) sets up its own", field: "tls")
            return nil
        }
        if node.scalar != nil {
            guard let on = fields.bool("tls") else { return nil }
            return on ? .issued : nil
        }
        guard let files = FieldReader(node, path: fields.fieldPath("tls"), fields.diagnostics, what: "tls: true or {cert, key}") else {
            return nil
        }
        defer { files.finish() }
        let folder = URL(fileURLWithPath: node.location.file).deletingLastPathComponent()
        func path(_ key: String) -> String? {
            guard let text = files.string(key, required: true) else { return nil }
            let path = text.hasPrefix("/") ? text : folder.appendingPathComponent(text).standardizedFileURL.path
            if !FileManager.default.isReadableFile(atPath: path) { files.error("cannot read '\(path)'", field: key) }
            return path
        }
        guard let certificate = path("cert"), let key = path("key") else { return nil }
        return .files(certificate: certificate, key: key)
    }

    private static func decodeOrigin(
        _ node: ConfigNode, path: String, _ diagnostics: Diagnostics,
        _ fixedAddress: (FieldReader, String, String?, Bool) -> IPAddress?
    ) -> OriginSpec? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "an origin {name, kind, ports, ...}") else { return nil }
        defer { fields.finish() }
        let errorsBefore = diagnostics.errorCount
        let name = fields.value("name", required: true, hostLikeName)
        let kind = fields.value("kind", required: true) { text in
            OriginSpec.Kind(rawValue: text).map { .success($0) }
                ?? .failure(ValueError("'\(text)' is not one of: \(OriginSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        let declaredTransport = fields.choice("transport", ["tcp": Transport.tcp, "udp": .udp])
        let ports = fields.scalars("ports") { PortRange.parse($0) }
        let command = fields.scalars("command") { Result<String, ValueError>.success($0) } ?? []
        let proxyProtocol =
            fields.choice("proxy_protocol", ["off": ProxyProtocolMode.off, "v1": .v1, "v2": .v2, "simple": .simple]) ?? .off
        let banner = fields.string("banner")
        let checks = fields.scalars("checks") { text in
            MailCheck(rawValue: text).map { .success($0) }
                ?? .failure(ValueError("'\(text)' is not one of: \(MailCheck.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        let tls = decodeOriginTLS(fields, kind: kind)
        let origin = OriginSpec(
            name: name ?? "", kind: kind ?? .tcpEcho, transport: declaredTransport ?? .tcp, ports: ports ?? [],
            command: command, proxyProtocol: proxyProtocol, banner: banner, checks: checks ?? (kind == .postfix ? [.fcrdns] : []),
            tls: tls, city: fields.string("city"),
            ptr: fields.value("ptr", HostName.normalize),
            ipv4: fixedAddress(fields, "ipv4", name, true), ipv6: fixedAddress(fields, "ipv6", name, false),
            coordinates: decodeCoordinates(fields))
        guard let kind else { return nil }
        var result = origin
        switch kind {
        case .command:
            if command.isEmpty { fields.error("kind command needs command: [program, args...]", field: "command") }
            if declaredTransport == nil { fields.error("kind command needs transport: tcp or udp", field: "transport") }
            if ports == nil { fields.error("kind command needs the ports it listens on", field: "ports") }
        default:
            if fields.has("command") { fields.error("command is only for kind command", field: "command") }
            let implied: Transport = kind == .udpEcho ? .udp : .tcp
            if let declaredTransport, declaredTransport != implied {
                fields.error("kind \(kind.rawValue) is \(implied.rawValue); leave transport out", field: "transport")
            }
            result.transport = implied
            if ports == nil { result.ports = kind.defaultPorts }
        }
        if banner != nil, kind != .smtp, kind != .postfix { fields.error("banner is only for kinds smtp and postfix", field: "banner") }
        if checks != nil, kind != .smtp, kind != .postfix { fields.error("checks are only for kinds smtp and postfix", field: "checks") }
        if result.transport == .udp, proxyProtocol == .v1 { fields.error("proxy_protocol v1 is TCP only", field: "proxy_protocol") }
        if result.transport == .tcp, proxyProtocol == .simple { fields.error("proxy_protocol simple is UDP only", field: "proxy_protocol") }
        return diagnostics.errorCount == errorsBefore ? result : nil
    }

    private static func decodeLink(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics) -> LinkSpec? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "a link {between: [a, b], latency, ...}") else { return nil }
        defer { fields.finish() }
        let ends = fields.scalars("between", required: true) { Result<String, ValueError>.success($0) }
        // A link with a bad shape still joins its ends, so reachability is not reported twice.
        let shape = decodeShape(fields, requireDelay: true) ?? LinkShape()
        guard let ends, ends.count == 2 else {
            if ends != nil { fields.error("must name exactly two hosts: [a, b]", field: "between") }
            return nil
        }
        return LinkSpec(a: ends[0], b: ends[1], shape: shape, location: node.location)
    }

    /// Reads latency or rtt, jitter, loss and bandwidth. A scenario's link step reuses this.
    static func decodeShape(_ fields: FieldReader, requireDelay: Bool, base: LinkShape = LinkShape()) -> LinkShape? {
        let errorsBefore = fields.diagnostics.errorCount
        var shape = base
        let latency = fields.duration("latency")
        let rtt = fields.duration("rtt")
        switch (latency, rtt) {
        case (let latency?, nil): shape.latency = latency
        case (nil, let rtt?): shape.latency = rtt / 2
        case (_?, _?): fields.error("give latency (one way) or rtt (round trip), not both", field: "rtt")
        case (nil, nil):
            if requireDelay, !fields.has("latency"), !fields.has("rtt") {
                fields.error("a link needs latency (one way) or rtt (round trip), e.g. rtt: 24ms", field: "latency")
            }
        }
        if let jitter = fields.duration("jitter") { shape.jitter = jitter }
        if let loss = fields.value("loss", Quantity.percentage) { shape.loss = loss }
        if let bandwidth = fields.value("bandwidth", Quantity.bitRate) { shape.bandwidth = bandwidth }
        return fields.diagnostics.errorCount == errorsBefore ? shape : nil
    }

    private static func decodePools(_ fields: FieldReader) -> AddressPools {
        var pools = AddressPools()
        guard let node = fields.node("address_pools"),
            let poolFields = FieldReader(node, path: fields.fieldPath("address_pools"), fields.diagnostics)
        else { return pools }
        defer { poolFields.finish() }
        func pool(_ key: String, v4: Bool) -> IPPrefix? {
            poolFields.value(key) { text in
                IPPrefix.parse(text).flatMap { prefix in
                    let safe = v4 ? AddressPools.safeIPv4 : AddressPools.safeIPv6
                    guard prefix.address.isIPv4 == v4 else {
                        return .failure(ValueError("'\(text)' is not an \(v4 ? "IPv4" : "IPv6") block"))
                    }
                    guard safe.contains(prefix.address), prefix.length >= safe.length else {
                        return .failure(
                            ValueError(
                                "\(prefix) is outside \(safe); simulated addresses stay in the benchmarking and documentation ranges so nothing reaches a real network"
                            ))
                    }
                    return .success(prefix)
                }
            }
        }
        if let value = pool("applications_ipv4", v4: true) { pools.applicationsIPv4 = value }
        if let value = pool("applications_ipv6", v4: false) { pools.applicationsIPv6 = value }
        if let value = pool("hosts_ipv4", v4: true) { pools.hostsIPv4 = value }
        if let value = pool("hosts_ipv6", v4: false) { pools.hostsIPv6 = value }
        if pools.applicationsIPv4.overlaps(pools.hostsIPv4) {
            poolFields.error(
                "applications_ipv4 \(pools.applicationsIPv4) overlaps hosts_ipv4 \(pools.hostsIPv4)", field: "applications_ipv4")
        }
        if pools.applicationsIPv6.overlaps(pools.hostsIPv6) {
            poolFields.error(
                "applications_ipv6 \(pools.applicationsIPv6) overlaps hosts_ipv6 \(pools.hostsIPv6)", field: "applications_ipv6")
        }
        return pools
    }

    static func decodePrefix(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics) -> PrefixInfo? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "a prefix row {prefix, country, asn}") else { return nil }
        defer { fields.finish() }
        let prefix = fields.value("prefix", required: true, IPPrefix.parse)
        let country = fields.value("country", CountryCode.parse)
        let asn = fields.value("asn", ASNumber.parse)
        if !fields.has("country"), !fields.has("asn") {
            fields.error("a prefix row needs country, asn or both", field: "prefix")
        }
        return prefix.map { PrefixInfo(prefix: $0, country: country, asn: asn) }
    }

    private static func checkLinks(
        _ links: [LinkSpec], known: [String: SourceLocation], edgeNodes: Set<String>, clients: [String], origins: [String],
        _ diagnostics: Diagnostics
    ) {
        var seen: [Set<String>: LinkSpec] = [:]
        for (index, link) in links.enumerated() {
            let field = "links[\(index)].between"
            for end in [link.a, link.b] where known[end] == nil {
                let hint =
                    known.keys.sorted().min { editDistance($0, end) < editDistance($1, end) }.map { " (did you mean '\($0)'?)" } ?? ""
                diagnostics.error("'\(end)' is not an edge node, client or origin of this topology\(hint)", field: field, at: link.location)
            }
            if link.a == link.b {
                diagnostics.error("a link joins two different hosts; both ends are '\(link.a)'", field: field, at: link.location)
            }
            if let first = seen[[link.a, link.b]] {
                diagnostics.error(
                    "\(link.a) and \(link.b) are already linked at line \(first.location.line)", field: field, at: link.location)
            }
            seen[[link.a, link.b]] = link
        }
        for host in clients + origins where known[host] != nil {
            let reachesEdge = links.contains { ($0.a == host && edgeNodes.contains($0.b)) || ($0.b == host && edgeNodes.contains($0.a)) }
            if !reachesEdge, let location = known[host] {
                diagnostics.error("'\(host)' has no link to an edge node, so it cannot reach the fleet", field: "links", at: location)
            }
        }
    }
}
