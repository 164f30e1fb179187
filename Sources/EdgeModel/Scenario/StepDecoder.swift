/// Reads one timeline entry: `at` plus exactly one step kind.
struct StepDecoder {
    let context: ReferenceContext
    let decoder: ScenarioDecoder

    var diagnostics: Diagnostics { context.diagnostics }

    func decode(_ node: ConfigNode, path: String) -> TimedStep? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "a step {at, <kind>: {...}}") else { return nil }
        defer { fields.finish() }
        let at = fields.duration("at", required: true)
        let present = Step.kinds.filter { fields.has($0) }
        let kinds = Step.kinds.joined(separator: ", ")
        if present.isEmpty, let other = node.entries?.first(where: { $0.key != "at" }) {
            fields.ignore(other.key)
            fields.error("unknown step kind '\(other.key)'; a step is one of: \(kinds)", field: other.key)
            return nil
        }
        guard present.count == 1, let kind = present.first, let body = fields.node(kind) else {
            let message =
                present.isEmpty ? "a step needs one of: \(kinds)" : "a step has one kind; found \(present.joined(separator: " and "))"
            fields.error(message, field: present.last ?? "at")
            return nil
        }
        guard let step = FieldReader(body, path: fields.fieldPath(kind), diagnostics) else { return nil }
        defer { step.finish() }
        let decoded: Step?
        switch kind {
        case "traffic": decoded = traffic(step).map(Step.traffic)
        case "replay": decoded = replay(step).map(Step.replay)
        case "link": decoded = link(step).map(Step.link)
        case "node": decoded = host(step, among: context.topology.edgeNodes.map(\.name), kind: "an edge node").map(Step.node)
        case "origin": decoded = host(step, among: context.topology.origins.map(\.name), kind: "an origin").map(Step.origin)
        case "origin_name": decoded = originName(step).map(Step.originName)
        default: decoded = rotate(step).map(Step.rotate)
        }
        guard let at, let decoded else { return nil }
        return TimedStep(at: at, step: decoded, location: node.location)
    }

    private func traffic(_ fields: FieldReader) -> TrafficStep? {
        let clients = context.clients(fields, "from")
        let app = context.application(fields, "app")
        let connections = fields.int("connections", in: 1...1_000_000) ?? 1
        let concurrency = fields.int("concurrency", in: 1...10_000) ?? 1
        let bytes = fields.value("bytes", Quantity.byteCount) ?? 1024
        let rate = fields.value("rate", Quantity.rate)
        let resolve = fields.bool("resolve") ?? true
        let hold = fields.duration("hold") ?? .zero
        let given = fields.choice("family", ["ipv4": AddressFamilyChoice.ipv4, "ipv6": .ipv6, "any": .any])
        var family = given ?? .ipv4
        if let app, let edgeIPs = context.applications.first(where: { $0.id == app })?.edgeIPs {
            let has: (v4: Bool, v6: Bool)
            switch edgeIPs {
            case .dynamic(let connectivity): has = (connectivity != .ipv6, connectivity != .ipv4)
            case .static(let addresses): has = (addresses.contains(where: \.isIPv4), addresses.contains { !$0.isIPv4 })
            }
            // Unsaid, an IPv6-only application is reached over IPv6.
            if given == nil, !has.v4, has.v6 { family = .ipv6 }
            if family != .any, family == .ipv6 ? !has.v6 : !has.v4 {
                fields.error(
                    "application \(app) has no \(family == .ipv6 ? "IPv6" : "IPv4") address (its edge_ips); use family: \(family == .ipv6 ? "ipv4" : "ipv6") or any",
                    field: "family")
            }
        }
        if concurrency > connections {
            fields.error("concurrency \(concurrency) is above connections \(connections)", field: "concurrency")
        }
        let tlsVersion = fields.choice("tls_version", ["1.1": TLSVersionSetting.v1_1, "1.2": .v1_2, "1.3": .v1_3])
        if tlsVersion != nil, let app, context.applications.first(where: { $0.id == app })?.tls == .off {
            fields.error("application \(app) has tls off; tls_version is for applications with edge TLS", field: "tls_version")
        }
        guard let clients, let app else { return nil }
        var step = TrafficStep(
            clients: clients, application: app, connections: connections, concurrency: concurrency, bytes: bytes,
            rate: rate, resolve: resolve, hold: hold, family: family)
        step.tlsVersion = tlsVersion
        return step
    }

    private func replay(_ fields: FieldReader) -> ReplayStep? {
        let capture = fields.value("pcap", required: true) { path -> Result<String, ValueError> in
            let resolved = decoder.resolvePath(path)
            return decoder.fileExists(resolved) ? .success(resolved) : .failure(ValueError("no capture file at \(resolved)"))
        }
        let client = context.clients(fields, "from")?.first
        let target: ReplayStep.Target?
        switch (fields.has("app"), fields.has("map")) {
        case (true, false):
            target = context.application(fields, "app").map(ReplayStep.Target.application)
        case (false, true):
            target = portMap(fields)
        default:
            fields.error("give either app (every flow to one application) or map (captured port to application)", field: "app")
            target = nil
        }
        let speed =
            fields.value("speed") { text in
                guard let value = Double(text), value >= 0, value <= 1000 else {
                    return .failure(ValueError("must be a number from 0 (as fast as possible) to 1000, found '\(text)'"))
                }
                return .success(value)
            } ?? 1
        let compare =
            fields.choice("compare", ["none": ReplayStep.Compare.none, "length": .length, "exact": .exact]) ?? .length
        let filter = fields.string("filter")
        if let filter, filter.isEmpty || filter.utf8.count > 1000 {
            fields.error("a capture filter of 1 to 1,000 characters, as tcpdump takes", field: "filter")
        }
        let idle = fields.duration("udp_idle") ?? .seconds(60)
        if idle <= .zero { fields.error("must be above zero", field: "udp_idle") }
        guard let capture, let client, let target else { return nil }
        return ReplayStep(
            capture: capture, client: client, target: target, speed: speed, compare: compare, filter: filter, udpIdle: idle)
    }

    /// `map: {53: fleet_dns, 25: mail}`: captured server ports to applications.
    private func portMap(_ fields: FieldReader) -> ReplayStep.Target? {
        guard let node = fields.node("map"), let entries = node.entries, !entries.isEmpty else {
            fields.error("a mapping of captured ports to application ids (or fleet_dns)", field: "map")
            return nil
        }
        var map: [UInt16: String] = [:]
        var ok = true
        for entry in entries {
            guard let port = UInt16(entry.key), port > 0 else {
                context.diagnostics.error(
                    "'\(entry.key)' is not a port (1-65535)", field: "\(fields.fieldPath("map")).\(entry.key)", at: entry.keyLocation)
                ok = false
                continue
            }
            guard let value = entry.value.scalar else {
                context.diagnostics.error(
                    "an application id or fleet_dns", field: "\(fields.fieldPath("map")).\(entry.key)", at: entry.value.location)
                ok = false
                continue
            }
            if value == ReplayStep.fleetDNS {
                map[port] = value
            } else if let app = context.applications.first(where: { $0.id == value || $0.dns.name == value.lowercased() }) {
                map[port] = app.id
            } else {
                let known = context.applications.map(\.id).joined(separator: ", ")
                context.diagnostics.error(
                    "no application has id or name '\(value)'; known: \(known.isEmpty ? "none" : known), or fleet_dns for the fleet's DNS",
                    field: "\(fields.fieldPath("map")).\(entry.key)", at: entry.value.location)
                ok = false
            }
        }
        return ok ? .ports(map) : nil
    }

    private func link(_ fields: FieldReader) -> LinkStep? {
        let ends = fields.scalars("between", required: true) { Result<String, ValueError>.success($0) }
        let cut = fields.bool("cut") ?? false
        let restore = fields.bool("restore") ?? false
        let shapeKeys = ["latency", "rtt", "jitter", "loss", "bandwidth"].filter { fields.has($0) }
        guard let ends, ends.count == 2 else {
            if ends != nil { fields.error("must name exactly two hosts: [a, b]", field: "between") }
            fields.ignore(contentsOf: shapeKeys)
            return nil
        }
        guard let existing = context.topology.link(between: ends[0], ends[1]) else {
            fields.error("the topology has no link between \(ends[0]) and \(ends[1])", field: "between")
            fields.ignore(contentsOf: shapeKeys)
            return nil
        }
        let shape = TopologyDecoder.decodeShape(fields, requireDelay: false, base: existing.shape)
        let chosen = [cut, restore, !shapeKeys.isEmpty].filter { $0 }.count
        guard chosen == 1 else {
            fields.error("a link step does one thing: cut: true, restore: true, or new latency/rtt/jitter/loss/bandwidth", field: "between")
            return nil
        }
        let change: LinkStep.Change
        if cut {
            change = .cut
        } else if restore {
            change = .restore
        } else if let shape {
            change = .set(shape)
        } else {
            return nil
        }
        return LinkStep(a: ends[0], b: ends[1], change: change)
    }

    private func host(_ fields: FieldReader, among names: [String], kind: String) -> HostStep? {
        let name = context.hosts(fields, "name", among: names, kind: kind)?.first
        // Freezing is for node processes (an origin runs inside the runner); misbehaving for
        // built-in TCP origins.
        let nodeOnly: [HostStep.Action] = [.freeze, .thaw]
        let originOnly: [HostStep.Action] = [.blackhole, .reset, .slowRead]
        let actions = HostStep.Action.allCases.filter { kind == "an edge node" ? !originOnly.contains($0) : !nodeOnly.contains($0) }
        let action = fields.value("action", required: true) { text in
            HostStep.Action(rawValue: text).flatMap { actions.contains($0) ? $0 : nil }.map { .success($0) }
                ?? .failure(ValueError("'\(text)' is not one of: \(actions.map(\.rawValue).joined(separator: ", "))"))
        }
        let readRate = fields.value("read_rate") { text in
            let amount = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
            return Quantity.byteCount(amount).flatMap { value in
                value > 0 ? .success(value) : .failure(ValueError("must be above zero"))
            }
        }
        if action == .slowRead, readRate == nil, !fields.has("read_rate") {
            fields.error("slow_read needs read_rate (bytes a second, e.g. 64KiB/s)", field: "action")
        }
        if let action, action != .slowRead, fields.has("read_rate") {
            fields.error("read_rate is only for slow_read", field: "read_rate")
        }
        guard let name, let action else { return nil }
        if originOnly.contains(action), let origin = context.topology.origin(named: name),
            ![.tcpEcho, .http, .smtp].contains(origin.kind)
        {
            fields.error(
                "\(action.rawValue) is for built-in TCP origins (tcp-echo, http, smtp); \(name) is \(origin.kind.rawValue)", field: "action"
            )
            return nil
        }
        if action == .slowRead, readRate == nil { return nil }
        return HostStep(name: name, action: action, readRate: readRate)
    }

    private func originName(_ fields: FieldReader) -> OriginNameStep? {
        let name = fields.value("name", required: true) { text -> Result<String, ValueError> in
            let name = text.lowercased().trimmingTrailingDot
            guard context.originNames.contains(where: { $0.name == name }) else {
                let listed = context.originNames.map(\.name).joined(separator: ", ")
                return .failure(ValueError("'\(text)' is not in origin_names (\(listed.isEmpty ? "none" : listed))"))
            }
            return .success(name)
        }
        let origins = context.hosts(fields, "to", among: context.topology.origins.map(\.name), kind: "an origin")
        guard let name, let origins else { return nil }
        return OriginNameStep(name: name, origins: origins)
    }

    private func rotate(_ fields: FieldReader) -> RotateStep? {
        RotateStep(applications: context.dynamicApplications(fields, "apps"), drain: fields.duration("drain"))
    }
}
