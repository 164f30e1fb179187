/// Reads one `expect` entry: exactly one check kind with its parameters.
struct ExpectationDecoder {
    let context: ReferenceContext

    func decode(_ node: ConfigNode, path: String) -> Expectation? {
        let diagnostics = context.diagnostics
        guard let entries = node.entries, entries.count == 1, let entry = entries.first else {
            diagnostics.error(
                "an expectation is one of \(Expectation.kinds.joined(separator: ", ")) with its parameters", field: path, at: node.location)
            return nil
        }
        let field = "\(path).\(entry.key)"
        guard Expectation.kinds.contains(entry.key) else {
            let hint = Expectation.kinds.min { editDistance($0, entry.key) < editDistance($1, entry.key) } ?? ""
            diagnostics.error("unknown expectation '\(entry.key)' (did you mean '\(hint)'?)", field: field, at: entry.keyLocation)
            return nil
        }
        guard let fields = FieldReader(entry.value, path: field, diagnostics) else { return nil }
        defer { fields.finish() }
        switch entry.key {
        case "success_rate":
            let scope = self.scope(fields)
            let atLeast = fields.value("at_least", required: true, Quantity.percentage)
            guard let scope, let atLeast else { return nil }
            return .successRate(scope: scope, atLeast: atLeast)
        case "connect_time":
            let scope = self.scope(fields)
            let percentiles = ["p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0]
            let given = percentiles.keys.sorted().filter { fields.has($0) }
            guard given.count == 1, let key = given.first, let bound = fields.duration(key) else {
                if given.count != 1 { fields.error("give exactly one of p50, p90, p99, max", field: "p99") }
                return nil
            }
            guard let scope else { return nil }
            return .connectTime(scope: scope, percentile: percentiles[key]!, below: bound)
        case "first_byte_time":
            let scope = self.scope(fields, appRequired: true)
            let percentiles = ["p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0]
            if fields.has("lower_than") {
                let other = context.application(fields, "lower_than")
                let key = fields.value("percentile") { text in
                    percentiles[text].map { .success($0) } ?? .failure(ValueError("'\(text)' is not one of max, p50, p90, p99"))
                }
                for given in percentiles.keys.sorted() where fields.has(given) {
                    fields.error("give either \(given) with a time or lower_than with an application", field: given)
                }
                guard let scope, let other else { return nil }
                if other == scope.application { fields.error("compare with another application", field: "lower_than") }
                return .firstByteTime(scope: scope, percentile: key ?? 0.5, bound: .lowerThan(application: other))
            }
            let given = percentiles.keys.sorted().filter { fields.has($0) }
            guard given.count == 1, let key = given.first, let bound = fields.duration(key) else {
                if given.count != 1 { fields.error("give exactly one of p50, p90, p99, max, or lower_than", field: "p50") }
                return nil
            }
            guard let scope else { return nil }
            return .firstByteTime(scope: scope, percentile: percentiles[key]!, bound: .below(bound))
        case "http_status", "header_seen":
            let scope = self.scope(fields, appRequired: true)
            if let id = scope?.application, context.applications.first(where: { $0.id == id })?.trafficType == .direct {
                fields.error("application \(id) has traffic_type direct; \(entry.key) is for http and https applications", field: "app")
            }
            if entry.key == "http_status" {
                let status = fields.int("status", in: 100...599, required: true)
                guard let scope, let status else { return nil }
                return .httpStatus(scope: scope, status: status)
            }
            let header = fields.string("header") ?? "CF-Connecting-IP"
            guard let scope else { return nil }
            return .headerSeen(scope: scope, header: header)
        case "tls_version":
            let scope = self.scope(fields, appRequired: true)
            let version = fields.choice("version", ["1.1": TLSVersionSetting.v1_1, "1.2": .v1_2, "1.3": .v1_3], required: true)
            if let id = scope?.application, context.applications.first(where: { $0.id == id })?.tls == .off {
                fields.error("application \(id) has tls off, so no connection of it negotiates TLS", field: "app")
            }
            guard let scope, let version else { return nil }
            return .tlsVersion(scope: scope, version: version)
        case "client_address_seen":
            guard let scope = self.scope(fields, appRequired: true), let id = scope.application else { return nil }
            if context.applications.first(where: { $0.id == id })?.proxyProtocol == .off {
                fields.warning("application \(id) has proxy_protocol off, so its origin only sees the edge's address", field: "app")
            }
            return .clientAddressSeen(scope: scope)
        case "blocked":
            guard let scope = self.scope(fields, clientsRequired: true) else { return nil }
            return .blocked(scope: scope)
        case "served_by":
            let scope = self.scope(fields, clientsRequired: true)
            let node = context.hosts(fields, "node", among: context.topology.edgeNodes.map(\.name), kind: "an edge node")?.first
            guard let scope, let node else { return nil }
            return .servedBy(scope: scope, node: node)
        case "origin_reached":
            let scope = self.scope(fields, appRequired: true)
            let origin = context.hosts(fields, "origin", among: context.topology.origins.map(\.name), kind: "an origin")?.first
            let atLeast = fields.int("at_least", in: 1...10_000_000) ?? 1
            guard let scope, let origin else { return nil }
            return .originReached(scope: scope, origin: origin, atLeast: atLeast)
        case "rotations":
            let app = context.application(fields, "app")
            let atLeast = fields.int("at_least", in: 0...1_000_000, required: true)
            guard let app, let atLeast else { return nil }
            return .rotations(application: app, atLeast: atLeast)
        case "client_rejected", "client_accepted":
            let scope = self.scope(fields, appRequired: true, clientsRequired: true)
            let reason = entry.key == "client_rejected" ? fields.string("reason") : nil
            guard let scope, let id = scope.application else { return nil }
            if !context.isMailApplication(id) {
                fields.error("application \(id) does not lead to an smtp or postfix origin, so nothing takes or refuses mail", field: "app")
                return nil
            }
            return entry.key == "client_rejected" ? .clientRejected(scope: scope, reason: reason) : .clientAccepted(scope: scope)
        case "node_reported_down":
            return context.hosts(fields, "node", among: context.topology.edgeNodes.map(\.name), kind: "an edge node")?.first
                .map(Expectation.nodeReportedDown)
        case "limited":
            let scope = self.scope(fields, appRequired: true)
            let limit = fields.choice("limit", ["connections": "connections", "idle": "idle", "buffered": "buffered"])
            let atLeast = fields.int("at_least", in: 1...10_000_000) ?? 1
            if !fields.has("limit") { fields.error("give limit: connections, idle or buffered", field: "limit") }
            guard let scope, let limit else { return nil }
            return .limited(scope: scope, limit: limit, atLeast: atLeast)
        case "no_leftovers":
            return .noLeftovers
        case "memory_bounded":
            let maxRSS = fields.value("max_rss", required: true, Quantity.byteCount)
            let maxGrowth = fields.value("max_growth", Quantity.byteCount) ?? maxRSS
            let descriptors = fields.int("max_descriptor_growth", in: 0...1_000_000) ?? 64
            let processes =
                fields.has("processes")
                ? context.hosts(
                    fields, "processes", among: context.topology.edgeNodes.map(\.name) + ["runner"], kind: "an edge node or runner")
                : []
            guard let maxRSS, let maxGrowth, let processes else { return nil }
            return .memoryBounded(maxRSS: maxRSS, maxGrowth: maxGrowth, maxDescriptorGrowth: descriptors, processes: processes)
        case "replay_success":
            let app = context.application(fields, "app", required: false)
            let atLeast = fields.value("at_least", required: true, Quantity.percentage)
            guard let atLeast else { return nil }
            return .replaySuccess(application: app, atLeast: atLeast)
        case "replay_timing":
            let app = context.application(fields, "app", required: false)
            let percentiles = ["p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0]
            let given = percentiles.keys.sorted().filter { fields.has($0) }
            guard given.count == 1, let key = given.first, let bound = fields.duration(key) else {
                if given.count != 1 { fields.error("give exactly one of p50, p90, p99, max", field: "p99") }
                return nil
            }
            return .replayTiming(application: app, percentile: percentiles[key]!, below: bound)
        case "old_address_refused":
            return context.application(fields, "app").map(Expectation.oldAddressRefused)
        default:
            return context.application(fields, "app").map(Expectation.connectionsSurvived)
        }
    }

    private func scope(_ fields: FieldReader, appRequired: Bool = false, clientsRequired: Bool = false) -> TrafficScope? {
        let errorsBefore = context.diagnostics.errorCount
        let app = context.application(fields, "app", required: appRequired)
        let clients = context.clients(fields, "from", required: clientsRequired) ?? []
        guard context.diagnostics.errorCount == errorsBefore else { return nil }
        return TrafficScope(application: app, clients: clients)
    }
}
