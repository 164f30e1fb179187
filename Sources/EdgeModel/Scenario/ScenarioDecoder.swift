/// Reads a scenario, loading the topology and application files it names, and checks that every
/// name it uses (apps, clients, nodes, origins, links) exists.
struct ScenarioDecoder {
    let diagnostics: Diagnostics
    /// Reads a file the scenario refers to; reports its own errors.
    let loadDocument: (String) -> ConfigNode?
    /// Resolves a path written in the scenario against the scenario's folder.
    let resolvePath: (String) -> String
    let fileExists: (String) -> Bool

    func decode(_ root: ConfigNode) -> Scenario? {
        guard let fields = FieldReader(root, path: "", diagnostics, what: "a scenario (a mapping with name, topology, timeline...)") else {
            return nil
        }
        defer { fields.finish() }
        let errorsBefore = diagnostics.errorCount
        let name = fields.value("name", required: true, TopologyDecoder.hostLikeName) ?? ""
        let description = fields.string("description") ?? ""
        let mode = fields.choice("mode", ["auto": RunMode.auto, "netns": .netns, "loopback": .loopback]) ?? .auto
        let timeout = fields.duration("timeout") ?? .seconds(120)
        let topologyPath = fields.string("topology", required: true).map(resolvePath)
        let topology = topologyPath.flatMap(loadDocument).flatMap { TopologyDecoder.decode($0, diagnostics) }

        var applications: [ConfigNode] = fields.list("apps")?.map(\.node) ?? []
        for path in fields.scalars("app_files", { .success($0) }) ?? [] {
            guard let document = loadDocument(resolvePath(path)) else { continue }
            applications += document.sequence ?? document["result"]?.sequence ?? [document]
        }
        let apps = ApplicationDecoder.decodeList(applications, path: "apps", diagnostics)
        let rules = AccessRuleDecoder.decodeList(fields.list("access_rules") ?? [], diagnostics)

        guard let topology else {
            // Without a topology nothing below can be checked; do not call it unknown either.
            fields.ignore("rotation", "timeline", "expect", "limits", "origin_names", "capture")
            return nil
        }
        var context = ReferenceContext(scenario: fields, topology: topology, applications: apps, diagnostics: diagnostics)
        context.originNames = decodeOriginNames(fields, context)
        context.checkApplications(apps)
        context.checkRules(rules, fields: fields)
        let rotation = fields.node("rotation").flatMap { decodeRotation($0, context) }
        var timeline: [TimedStep] = []
        for item in fields.list("timeline") ?? [] {
            guard let step = StepDecoder(context: context, decoder: self).decode(item.node, path: item.path) else { continue }
            if step.at > timeout {
                diagnostics.error(
                    "step at \(step.at.formatted) comes after the timeout (\(timeout.formatted))", field: item.path + ".at",
                    at: item.node.location)
            }
            timeline.append(step)
        }
        let expectations = (fields.list("expect") ?? []).compactMap {
            ExpectationDecoder(context: context).decode($0.node, path: $0.path)
        }
        let captures = decodeCaptures(fields, context)
        var limits = NodeLimits()
        if let node = fields.node("limits"),
            let limitFields = FieldReader(node, path: "limits", diagnostics, what: "{tcp_connections, ...}")
        {
            limits = NodeLimits.decode(limitFields)
            limitFields.finish()
        }
        guard diagnostics.errorCount == errorsBefore, let topologyPath else { return nil }
        var scenario = Scenario(
            name: name, description: description, topologyPath: topologyPath, topology: topology, applications: apps,
            accessRules: rules, mode: mode, timeout: timeout, rotation: rotation,
            timeline: timeline.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element),
            expectations: expectations, location: root.location)
        scenario.limits = limits
        scenario.originNames = context.originNames
        scenario.captures = captures
        return scenario
    }

    /// `capture: {host, file, filter}`, or a list of them.
    private func decodeCaptures(_ fields: FieldReader, _ context: ReferenceContext) -> [CaptureRequest] {
        guard let node = fields.node("capture") else { return [] }
        let items: [(node: ConfigNode, path: String)] =
            node.entries != nil ? [(node, "capture")] : (fields.list("capture") ?? [])
        let hosts = context.topology.clients.map(\.name) + context.topology.edgeNodes.map(\.name) + context.topology.origins.map(\.name)
        var captures: [CaptureRequest] = []
        for item in items {
            guard let entry = FieldReader(item.node, path: item.path, diagnostics, what: "{host, file, filter}") else { continue }
            defer { entry.finish() }
            let host = context.hosts(entry, "host", among: hosts, kind: "a client, edge node or origin")?.first
            let file = entry.string("file", required: true)
            let filter = entry.string("filter")
            if let filter, filter.isEmpty || filter.utf8.count > 1000 {
                entry.error("a capture filter of 1 to 1,000 characters, as tcpdump takes", field: "filter")
            }
            if let file, captures.contains(where: { $0.file == file }) {
                entry.error("\(file) is written by another capture", field: "file")
            }
            guard let host, let file else { continue }
            captures.append(CaptureRequest(host: host, file: file, filter: filter))
        }
        return captures
    }

    /// `origin_names: [{name, to: [origins], ttl}]`.
    private func decodeOriginNames(_ fields: FieldReader, _ context: ReferenceContext) -> [OriginName] {
        var names: [OriginName] = []
        for item in fields.list("origin_names") ?? [] {
            guard let entry = FieldReader(item.node, path: item.path, diagnostics, what: "{name, to: [origins], ttl}") else { continue }
            defer { entry.finish() }
            let name = entry.value("name", required: true) { text -> Result<String, ValueError> in
                guard let parsed = DNSNameText.normalized(text) else { return .failure(ValueError("'\(text)' is not a DNS name")) }
                return .success(parsed)
            }
            let origins = context.hosts(entry, "to", among: context.topology.origins.map(\.name), kind: "an origin")
            let ttl = entry.duration("ttl") ?? .seconds(5)
            if ttl < .zero || ttl > .seconds(86_400) { entry.error("from 0s to 1d", field: "ttl") }
            guard let name, let origins else { continue }
            if names.contains(where: { $0.name == name }) {
                entry.error("\(name) is listed twice", field: "name")
                continue
            }
            names.append(OriginName(name: name, origins: origins, ttl: ttl))
        }
        return names
    }

    private func decodeRotation(_ node: ConfigNode, _ context: ReferenceContext) -> RotationSchedule? {
        guard let fields = FieldReader(node, path: "rotation", diagnostics, what: "{every, drain, apps}") else { return nil }
        defer { fields.finish() }
        let every = fields.duration("every", required: true)
        let drain = fields.duration("drain") ?? .seconds(10)
        let apps = context.dynamicApplications(fields, "apps")
        guard let every else { return nil }
        if every < .seconds(1) { fields.error("rotating more often than once a second is not supported", field: "every") }
        return RotationSchedule(every: every, drain: drain, applications: apps)
    }
}

/// What references in a scenario may point at.
struct ReferenceContext {
    let scenario: FieldReader
    let topology: Topology
    let applications: [Application]
    let diagnostics: Diagnostics
    /// `origin_names`, once read.
    var originNames: [OriginName] = []

    /// The id of the application named by id or DNS name.
    func application(_ fields: FieldReader, _ key: String, required: Bool = true) -> String? {
        fields.value(key, required: required) { reference in
            if let app = applications.first(where: { $0.id == reference || $0.dns.name == reference.lowercased() }) {
                return .success(app.id)
            }
            let known = applications.map { "\($0.id) (\($0.dns.name))" }.joined(separator: ", ")
            return .failure(ValueError("no application has id or name '\(reference)'; known: \(known.isEmpty ? "none" : known)"))
        }
    }

    /// Whether the application's first origin is a topology mail server (smtp or postfix).
    func isMailApplication(_ id: String) -> Bool {
        guard case .direct(let origins) = applications.first(where: { $0.id == id })?.origin, let first = origins.first,
            case .topologyHost(let host) = first.host, let kind = topology.origin(named: host)?.kind
        else { return false }
        return kind == .smtp || kind == .postfix
    }

    func dynamicApplications(_ fields: FieldReader, _ key: String) -> [String] {
        fields.scalars(key) { reference in
            guard let app = applications.first(where: { $0.id == reference || $0.dns.name == reference.lowercased() }) else {
                return .failure(ValueError("no application has id or name '\(reference)'"))
            }
            guard case .dynamic = app.edgeIPs else {
                return .failure(ValueError("'\(reference)' has static edge_ips, which do not rotate"))
            }
            return .success(app.id)
        } ?? []
    }

    func hosts(_ fields: FieldReader, _ key: String, among names: [String], kind: String, required: Bool = true) -> [String]? {
        fields.scalars(key, required: required) { name in
            guard names.contains(name) else {
                let hint = names.min { editDistance($0, name) < editDistance($1, name) }.map { " (did you mean '\($0)'?)" } ?? ""
                return .failure(ValueError("'\(name)' is not \(kind) of the topology\(hint)"))
            }
            return .success(name)
        }
    }

    func clients(_ fields: FieldReader, _ key: String, required: Bool = true) -> [String]? {
        hosts(fields, key, among: topology.clients.map(\.name), kind: "a client", required: required)
    }

    /// Apps whose origins name topology hosts must name origins that listen there.
    func checkApplications(_ apps: [Application]) {
        for app in apps {
            if case .direct(let addresses) = app.origin {
                for (index, address) in addresses.enumerated() {
                    guard case .topologyHost(let name) = address.host else { continue }
                    let field = "apps[\(app.id)].origin_direct[\(index)]"
                    guard let origin = topology.origin(named: name) else {
                        diagnostics.error(
                            "'\(name)' is not an IP address nor an origin of topology '\(topology.name)'", field: field, at: app.location)
                        continue
                    }
                    if origin.transport != address.transport || !origin.listens(on: address.ports) {
                        let ports = origin.ports.map(\.description).joined(separator: ", ")
                        diagnostics.error(
                            "origin '\(name)' listens on \(origin.transport.rawValue) \(ports), not \(address.transport.rawValue) \(address.ports)",
                            field: field, at: app.location)
                    }
                }
            }
            if case .dns(let dns) = app.origin {
                let field = "apps[\(app.id)].origin_dns.name"
                if dns.type == .srv {
                    diagnostics.error(
                        "in a scenario the fleet's DNS answers origin names with A and AAAA records; type SRV is not served",
                        field: "apps[\(app.id)].origin_dns.type", at: app.location)
                } else if !originNames.contains(where: { $0.name == dns.name.lowercased().trimmingTrailingDot }) {
                    let listed = originNames.map(\.name).joined(separator: ", ")
                    diagnostics.error(
                        "the fleet's DNS answers only the names in origin_names (\(listed.isEmpty ? "none" : listed)); add \(dns.name) there with the origins it points to",
                        field: field, at: app.location)
                }
            }
            if case .static(let ips) = app.edgeIPs {
                for ip in ips where !(ip.isIPv4 ? topology.pools.applicationsIPv4 : topology.pools.applicationsIPv6).contains(ip) {
                    let pool = ip.isIPv4 ? topology.pools.applicationsIPv4 : topology.pools.applicationsIPv6
                    diagnostics.error(
                        "static address \(ip) is outside the topology's application pool \(pool)", field: "apps[\(app.id)].edge_ips",
                        at: app.location)
                }
            }
        }
    }

    func checkRules(_ rules: [AccessRule], fields: FieldReader) {
        for rule in rules {
            switch rule.target {
            case .country(let code) where !topology.prefixes.contains(where: { $0.country == code }):
                fields.warning("no prefix in the topology's table is in country \(code); the rule matches no client", field: "access_rules")
            case .asn(let number) where !topology.prefixes.contains(where: { $0.asn == number }):
                fields.warning("no prefix in the topology's table is in AS\(number); the rule matches no client", field: "access_rules")
            default: break
            }
        }
        if !rules.isEmpty, !applications.contains(where: \.ipFirewall) {
            fields.warning("access rules are given but no application has ip_firewall: true, so none applies", field: "access_rules")
        }
    }
}

/// DNS names as a scenario writes them: lowercase, no final dot, labels of 1-63 letters,
/// digits, hyphens or underscores, 253 characters at most.
enum DNSNameText {
    static func normalized(_ text: String) -> String? {
        let name = text.lowercased().trimmingTrailingDot
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count),
                label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F })
            else { return nil }
        }
        return name
    }
}

extension String {
    var trimmingTrailingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}
