import EdgeModel
import Foundation

/// Turns a scenario's expectations and what the run observed into pass/fail checks, each with
/// the figure it measured.
public struct ExpectationChecker: Sendable {
    public let scenario: Scenario
    public let observed: Observations

    public init(scenario: Scenario, observed: Observations) {
        self.scenario = scenario
        self.observed = observed
    }

    func firstByteTime(_ scope: TrafficScope, percentile: Double, bound: TimeBound) -> RunReport.Check {
        let label = percentile == 1 ? "max" : "p\(Int(percentile * 100))"
        let name = "first_byte_time \(label) \(describe(scope))"
        func value(_ scope: TrafficScope) -> (Double?, Int) {
            let times = traffic(scope).filter(\.ok).compactMap(\.firstByteMs).sorted()
            return (Self.percentile(times, percentile), times.count)
        }
        let (measured, count) = value(scope)
        switch bound {
        case .below(let limit):
            let limit = limit.seconds * 1000
            guard let measured else {
                return RunReport.Check(name: name, passed: false, measured: "no first byte", expected: "under \(RunReport.ms(limit)) ms")
            }
            return RunReport.Check(
                name: name, passed: measured < limit, measured: "\(RunReport.ms(measured)) ms over \(count) connections",
                expected: "under \(RunReport.ms(limit)) ms")
        case .lowerThan(let other):
            let (theirs, _) = value(TrafficScope(application: other, clients: scope.clients))
            let expected = "lower than \(other)'s\(theirs.map { " \(RunReport.ms($0)) ms" } ?? " (no first byte)")"
            guard let measured, let theirs else {
                return RunReport.Check(
                    name: name, passed: false, measured: measured.map { "\(RunReport.ms($0)) ms" } ?? "no first byte", expected: expected)
            }
            let gain = theirs > 0 ? " (\(Int(((theirs - measured) / theirs * 100).rounded()))% lower)" : ""
            return RunReport.Check(
                name: name, passed: measured < theirs, measured: "\(RunReport.ms(measured)) ms\(measured < theirs ? gain : "")",
                expected: expected)
        }
    }

    public func checks() -> [RunReport.Check] {
        scenario.expectations.map(check)
    }

    func check(_ expectation: Expectation) -> RunReport.Check {
        switch expectation {
        case .tlsVersion(let scope, let version):
            let connected = traffic(scope).filter(\.ok)
            let versions = Dictionary(grouping: connected, by: { $0.tlsVersion ?? "no TLS" }).mapValues(\.count)
            let wanted = "TLSv\(version.rawValue)"
            let measured = versions.sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }.joined(separator: ", ")
            return RunReport.Check(
                name: "tls_version \(describe(scope))", passed: !connected.isEmpty && versions.keys.allSatisfy { $0 == wanted },
                measured: connected.isEmpty ? "no connection completed" : measured, expected: "every connection \(wanted)")
        case .httpStatus(let scope, let status):
            let answered = traffic(scope).filter { $0.httpStatus != nil }
            let statuses = Dictionary(grouping: answered, by: { $0.httpStatus! }).mapValues(\.count)
            let unanswered = traffic(scope).count - answered.count
            let measured = statuses.sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }.joined(separator: ", ")
            return RunReport.Check(
                name: "http_status \(describe(scope))",
                passed: !answered.isEmpty && unanswered == 0 && statuses.keys.allSatisfy { $0 == status },
                measured: (answered.isEmpty ? "no HTTP response" : measured) + (unanswered > 0 ? "; \(unanswered) without a response" : ""),
                expected: "every request answered \(status)")
        case .headerSeen(let scope, let header):
            let results = traffic(scope)
            let name = header.lowercased()
            let missing = results.filter { result in
                guard let value = result.headersSeen?[name] else { return true }
                let own = observed.addresses(of: result.client).map { "\($0)" }
                return !value.split(separator: ",").contains { own.contains($0.trimmingCharacters(in: .whitespaces)) }
            }
            return RunReport.Check(
                name: "header_seen \(header) \(describe(scope))", passed: !results.isEmpty && missing.isEmpty,
                measured:
                    "\(results.count - missing.count) of \(results.count) requests reached the origin with the client's own address in \(header)",
                expected: "every request",
                detail: missing.first.map { "e.g. \($0.client): origin saw \($0.headersSeen?[name] ?? "no \(header)")" })
        case .successRate(let scope, let atLeast):
            let results = traffic(scope)
            let ok = results.filter(\.ok).count
            let rate = results.isEmpty ? 0 : Double(ok) / Double(results.count)
            let errors = Dictionary(grouping: results.compactMap(\.error), by: { $0 }).mapValues(\.count)
            let worst = errors.sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
            return RunReport.Check(
                name: "success_rate \(describe(scope))", passed: !results.isEmpty && rate >= atLeast - 1e-12,
                measured: results.isEmpty ? "no traffic" : "\(Self.percent(rate)) (\(ok)/\(results.count))",
                expected: "at least \(Self.percent(atLeast))", detail: worst.isEmpty ? nil : worst)
        case .connectTime(let scope, let percentile, let below):
            let times = traffic(scope).filter(\.ok).compactMap(\.connectMs).sorted()
            let label = percentile == 1 ? "max" : "p\(Int(percentile * 100))"
            let bound = below.seconds * 1000
            guard let value = Self.percentile(times, percentile) else {
                return RunReport.Check(
                    name: "connect_time \(label) \(describe(scope))", passed: false, measured: "no connection",
                    expected: "under \(RunReport.ms(bound)) ms")
            }
            return RunReport.Check(
                name: "connect_time \(label) \(describe(scope))", passed: value < bound,
                measured: "\(RunReport.ms(value)) ms over \(times.count) connections", expected: "under \(RunReport.ms(bound)) ms")
        case .firstByteTime(let scope, let percentile, let bound):
            return firstByteTime(scope, percentile: percentile, bound: bound)
        case .clientAddressSeen(let scope):
            return clientAddressSeen(scope)
        case .clientRejected(let scope, let reason):
            return mail(scope, rejected: true, reason: reason)
        case .clientAccepted(let scope):
            return mail(scope, rejected: false, reason: nil)
        case .limited(let scope, let limit, let atLeast):
            let events = nodeEvents(scope)
            let hits: Int
            let what: String
            switch limit {
            case "buffered":
                hits = events.filter { ($0.readsHeld ?? 0) > 0 }.count
                what = "connections whose reads waited for buffered_bytes to drain"
            default:
                let status = limit == "connections" ? 495 : 498
                hits = events.filter { $0.status == status }.count
                what = "status \(status)"
            }
            return RunReport.Check(
                name: "limited \(limit) \(describe(scope))", passed: hits >= atLeast,
                measured: "\(hits) of \(events.count) node events", expected: "at least \(atLeast) (\(what))")
        case .replaySuccess(let app, let atLeast):
            let flows = observed.replays.filter { app == nil || $0.destination == app }
            let ok = flows.filter(\.ok).count
            let rate = flows.isEmpty ? 0 : Double(ok) / Double(flows.count)
            let errors = Dictionary(grouping: flows.compactMap(\.error), by: { $0 }).mapValues(\.count)
            let worst = errors.sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
            return RunReport.Check(
                name: "replay_success\(app.map { " \($0)" } ?? "")", passed: !flows.isEmpty && rate >= atLeast - 1e-12,
                measured: flows.isEmpty ? "no flow replayed" : "\(Self.percent(rate)) (\(ok)/\(flows.count) flows)",
                expected: "at least \(Self.percent(atLeast))", detail: worst.isEmpty ? nil : worst)
        case .replayTiming(let app, let percentile, let below):
            let times = observed.replays.filter { app == nil || $0.destination == app }.flatMap(\.timingErrorsMs).map(abs).sorted()
            let label = percentile == 1 ? "max" : "p\(Int(percentile * 100))"
            let bound = below.seconds * 1000
            let name = "replay_timing \(label)\(app.map { " \($0)" } ?? "")"
            guard let value = Self.percentile(times, percentile) else {
                return RunReport.Check(
                    name: name, passed: false, measured: "no timed send (speed 0 has no schedule)",
                    expected: "under \(RunReport.ms(bound)) ms")
            }
            return RunReport.Check(
                name: name, passed: value < bound,
                measured: String(format: "%.3f ms off the capture's schedule over %d sends", value, times.count),
                expected: "under \(RunReport.ms(bound)) ms")
        case .noLeftovers:
            return RunReport.Check(
                name: "no_leftovers", passed: observed.leftovers.isEmpty,
                measured: observed.leftovers.isEmpty ? "nothing left" : "\(observed.leftovers.count) left",
                expected: "nothing of the run left after it", detail: observed.leftovers.prefix(5).joined(separator: "; "))
        case .memoryBounded(let maxRSS, let maxGrowth, let maxDescriptors, let processes):
            return memoryBounded(maxRSS: maxRSS, maxGrowth: maxGrowth, maxDescriptors: maxDescriptors, processes: processes)
        case .nodeReportedDown(let node):
            let times = observed.nodeDowns.filter { $0.node == node }.map { down in
                String(format: "down at %.1f s", down.time - observed.began)
                    + (down.back.map { String(format: ", back at %.1f s", $0 - observed.began) } ?? ", not back")
            }
            return RunReport.Check(
                name: "node_reported_down \(node)", passed: !times.isEmpty,
                measured: times.isEmpty ? "never reported down" : times.joined(separator: "; "),
                expected: "the fleet notices the node stopped answering")
        case .blocked(let scope):
            let events = nodeEvents(scope)
            let results = traffic(scope)
            let blocked = events.filter { $0.status == 403 }.count
            let leaked = results.filter(\.ok).count
            return RunReport.Check(
                name: "blocked \(describe(scope))", passed: blocked > 0 && blocked == events.count && leaked == 0,
                measured: "\(blocked) of \(events.count) node events were blocks; \(leaked) of \(results.count) connections got through",
                expected: "every connection blocked by an access rule")
        case .servedBy(let scope, let node):
            // An HTTP application's node says `request` for each request, where others say `connect`.
            let events = nodeEvents(scope).filter { [.connect, .request, .clientFiltered].contains($0.event) }
            let byNode = Dictionary(grouping: events, by: \.node).mapValues(\.count)
            let there = byNode[node] ?? 0
            let spread = byNode.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return RunReport.Check(
                name: "served_by \(node) \(describe(scope))", passed: there > 0 && there == events.count,
                measured: events.isEmpty ? "no connection reached a node" : "\(there) of \(events.count) (\(spread))",
                expected: "all by \(node)")
        case .originReached(let scope, let origin, let atLeast):
            let addresses = Set([observed.hostAddresses[origin], observed.hostAddressesV6[origin]].compactMap { $0 })
            let events = nodeEvents(scope).filter { $0.event == .connect || $0.event == .request }
            let reached = events.filter { $0.originEndpoint.map { addresses.contains($0.address) } ?? false }.count
            return RunReport.Check(
                name: "origin_reached \(origin) \(describe(scope))", passed: reached >= atLeast,
                measured: "\(reached) of \(events.count) connections and flows", expected: "at least \(atLeast) to \(origin)")
        case .rotations(let app, let atLeast):
            let count = observed.rotations.filter { $0.app == app }.count
            return RunReport.Check(
                name: "rotations \(app)", passed: count >= atLeast, measured: "\(count)", expected: "at least \(atLeast)")
        case .oldAddressRefused(let app):
            let probes = observed.probes.filter { $0.app == app }
            let refused = probes.filter(\.refused).count
            let accepted = probes.filter { !$0.refused }.map { "\($0.address): \($0.detail)" }.joined(separator: "; ")
            return RunReport.Check(
                name: "old_address_refused \(app)", passed: !probes.isEmpty && refused == probes.count,
                measured: probes.isEmpty ? "no address was retired" : "\(refused) of \(probes.count) retired addresses refused",
                expected: "every retired address refuses new connections", detail: accepted.isEmpty ? nil : accepted)
        case .connectionsSurvived(let app):
            let held = observed.results.filter { $0.app == app && $0.held }
            let published = observed.rotations.filter { $0.app == app }.map(\.publishedAt)
            let spanning = held.filter { result in published.contains { result.started < $0 && $0 < result.ended } }
            let survived = spanning.filter(\.ok).count
            let failures = held.compactMap(\.error).prefix(3).joined(separator: "; ")
            return RunReport.Check(
                name: "connections_survived \(app)",
                passed: !held.isEmpty && held.allSatisfy(\.ok) && spanning.count == held.count,
                measured: held.isEmpty
                    ? "no long-lived connection"
                    : "\(survived) of \(held.count) held connections survived; \(spanning.count) spanned a rotation",
                expected: "every held connection open across a rotation and still working", detail: failures.isEmpty ? nil : failures)
        }
    }

    /// Every message from the scope's clients refused (with `reason` in the reply), or every
    /// one taken; the replies that decided are shown.
    private func mail(_ scope: TrafficScope, rejected: Bool, reason: String?) -> RunReport.Check {
        let results = traffic(scope)
        let matching = results.filter { result in
            rejected ? result.refusal.map { reply in reason.map { reply.contains($0) } ?? true } ?? false : result.ok
        }
        let outcomes = Dictionary(grouping: results, by: { $0.refusal ?? ($0.ok ? "accepted" : $0.error ?? "failed") })
            .mapValues(\.count).sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
        let expected =
            rejected
            ? "every message refused by the origin\(reason.map { " with '\($0)'" } ?? "")" : "every message accepted by the origin"
        return RunReport.Check(
            name: "\(rejected ? "client_rejected" : "client_accepted") \(describe(scope))",
            passed: !results.isEmpty && matching.count == results.count,
            measured: results.isEmpty ? "no traffic" : "\(matching.count) of \(results.count) messages", expected: expected,
            detail: outcomes.isEmpty ? nil : outcomes)
    }

    private func memoryBounded(maxRSS: UInt64, maxGrowth: UInt64, maxDescriptors: Int, processes: [String]) -> RunReport.Check {
        func mib(_ bytes: UInt64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        var problems: [String] = []
        var largest: (String, UInt64) = ("", 0)
        // A node sharing a process is measured by its process.
        let wanted = Set(processes.map { observed.processOfNode[$0] ?? $0 })
        let usage = observed.usage.filter { processes.isEmpty || wanted.contains($0.key) }
        for (name, span) in usage.sorted(by: { $0.key < $1.key }) {
            guard let start = span.start, let end = span.end else {
                problems.append("\(name): not measured at both ends")
                continue
            }
            if end.rssBytes > largest.1 { largest = (name, end.rssBytes) }
            if end.rssBytes > maxRSS { problems.append("\(name) ends at \(mib(end.rssBytes))") }
            if end.rssBytes > start.rssBytes + maxGrowth { problems.append("\(name) grew by \(mib(end.rssBytes - start.rssBytes))") }
            if end.descriptors > start.descriptors + maxDescriptors {
                problems.append("\(name) holds \(end.descriptors - start.descriptors) more descriptors")
            }
        }
        return RunReport.Check(
            name: processes.isEmpty ? "memory_bounded" : "memory_bounded \(processes.joined(separator: ", "))",
            passed: !usage.isEmpty && problems.isEmpty,
            measured: usage.isEmpty ? "nothing measured" : "largest \(largest.0) at \(mib(largest.1)); \(problems.count) over",
            expected: "under \(mib(maxRSS)), growth under \(mib(maxGrowth)) and \(maxDescriptors) descriptors",
            detail: problems.isEmpty ? nil : problems.prefix(5).joined(separator: "; "))
    }

    private func clientAddressSeen(_ scope: TrafficScope) -> RunReport.Check {
        let name = "client_address_seen \(describe(scope))"
        guard let id = scope.application, let app = scenario.application(id), case .direct(let origins) = app.origin else {
            return RunReport.Check(name: name, passed: false, measured: "application has no direct origin", expected: "")
        }
        var seen: Set<IPAddress> = []
        for origin in origins {
            guard case .topologyHost(let host) = origin.host else { continue }
            for entry in observed.clientsSeen[host] ?? [] where origin.ports.contains(entry.port) { seen.insert(entry.client) }
        }
        let clients = scope.clients.isEmpty ? Array(Set(traffic(scope).map(\.client))).sorted() : scope.clients
        // Seen by either of its addresses (a client may have used IPv6).
        let missing = clients.filter { client in
            !observed.addresses(of: client).contains { seen.contains($0) }
        }
        return RunReport.Check(
            name: name, passed: !clients.isEmpty && missing.isEmpty,
            measured: "\(clients.count - missing.count) of \(clients.count) clients' own addresses reached the origin",
            expected: "every client's own address", detail: missing.isEmpty ? nil : "never seen: \(missing.joined(separator: ", "))")
    }

    private func traffic(_ scope: TrafficScope) -> [ConnectionResult] {
        observed.results.filter { result in
            (scope.application.map { $0 == result.app } ?? true) && (scope.clients.isEmpty || scope.clients.contains(result.client))
        }
    }

    private func nodeEvents(_ scope: TrafficScope) -> [Fleet.NodeEvent] {
        let addresses = Set(scope.clients.flatMap { observed.addresses(of: $0) })
        return observed.events.filter { event in
            (scope.application.map { $0 == event.app } ?? true) && (scope.clients.isEmpty || addresses.contains(event.client.address))
        }
    }

    private func describe(_ scope: TrafficScope) -> String {
        var parts: [String] = []
        if let app = scope.application { parts.append(app) }
        if !scope.clients.isEmpty { parts.append("from \(scope.clients.joined(separator: ", "))") }
        return parts.joined(separator: " ")
    }

    static func percent(_ value: Double) -> String {
        let text = String(format: "%.2f", value * 100)
        return (text.hasSuffix(".00") ? String(text.dropLast(3)) : text) + "%"
    }

    /// Nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
