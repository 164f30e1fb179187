import CoreMetrics
import EdgeDNS
import EdgeModel
import Foundation
import Synchronization

/// What a fleet counts, through swift-metrics, for whatever backend the factory belongs to:
/// connections and flows from every node's events (by app, node, transport, event, status and
/// IP version), bytes each way, durations and origin connect times, access-rule blocks; and,
/// brought up to date when asked (`refresh`, before a scrape), DNS answers by type and response
/// code, rotations, which nodes are up, what links carried and lost, smart routing's probe RTTs
/// and chosen paths.
public final class FleetMetrics: Sendable {
    let factory: any MetricsFactory
    /// What was already counted of the totals `refresh` reads, so counters only go up by what is new.
    private let seen = Mutex<[String: Int]>([:])

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// What each metric is, for backends that describe them (Prometheus's `# HELP`).
    public static let descriptions: [String: String] = [
        "edgesim_connection_events_total":
            "Connection and flow events nodes reported, by application, node, transport, event, status and IP version.",
        "edgesim_bytes_total":
            "Bytes carried for clients, ingress (from them) and egress (to them), counted when a connection or flow ends.",
        "edgesim_connection_duration_seconds": "How long connections and flows lasted.",
        "edgesim_origin_connect_seconds": "Time nodes took to connect to origins.",
        "edgesim_first_byte_seconds": "Time from a TCP connection's acceptance to the origin's first byte for the client.",
        "edgesim_access_rule_blocks_total": "Connections and flows refused by IP access rules.",
        "edgesim_dns_answers_total": "Answers of the fleet's DNS responder, by question type and response code.",
        "edgesim_rotations_total": "Address rotations, by application.",
        "edgesim_node_up": "1 while an edge node runs and answers its control channel, else 0.",
        "edgesim_link_packets_total":
            "Packets emulated links carried and lost (on loopback: the fabric's connections and flows, and datagrams lost).",
        "edgesim_probe_rtt_seconds": "Round-trip time smart routing measured from a node to a peer or origin.",
        "edgesim_chosen_path_expected_seconds":
            "Expected round-trip time of the path smart routing chose from a node to a destination, labelled with the nodes it goes through.",
    ]

    /// Counts one event a node reported.
    public func record(_ event: Fleet.NodeEvent) {
        let ipVersion = "\(event.ipVersion)"
        let transport = event.transport.rawValue
        CoreMetrics.Counter(
            label: "edgesim_connection_events_total",
            dimensions: [
                ("app", event.app), ("node", event.node), ("transport", transport), ("event", event.event.rawValue),
                ("status", "\(event.status)"),
                ("ip_version", ipVersion),
            ], factory: factory
        ).increment()
        if event.bytesIn > 0 || event.bytesOut > 0 {
            let where_ = [("app", event.app), ("node", event.node)]
            CoreMetrics.Counter(label: "edgesim_bytes_total", dimensions: where_ + [("direction", "ingress")], factory: factory)
                .increment(by: Int64(clamping: event.bytesIn))
            CoreMetrics.Counter(label: "edgesim_bytes_total", dimensions: where_ + [("direction", "egress")], factory: factory)
                .increment(by: Int64(clamping: event.bytesOut))
        }
        if let duration = event.durationMs {
            CoreMetrics.Timer(label: "edgesim_connection_duration_seconds", dimensions: [("app", event.app)], factory: factory)
                .recordNanoseconds(Int64(duration * 1_000_000))
        }
        if let firstByte = event.firstByteMs {
            CoreMetrics.Timer(label: "edgesim_first_byte_seconds", dimensions: [("app", event.app)], factory: factory)
                .recordNanoseconds(Int64(firstByte * 1_000_000))
        }
        if event.event == .connect, let rtt = event.originRTTMs {
            CoreMetrics.Timer(label: "edgesim_origin_connect_seconds", dimensions: [("app", event.app)], factory: factory)
                .recordNanoseconds(Int64(rtt * 1_000_000))
        }
        if event.event == .clientFiltered {
            CoreMetrics.Counter(
                label: "edgesim_access_rule_blocks_total", dimensions: [("app", event.app), ("node", event.node)], factory: factory
            )
            .increment()
        }
    }

    /// Adds what is new since the last call to a counter kept from totals read elsewhere.
    private func advance(_ label: String, _ dimensions: [(String, String)], to total: Int) {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let added = seen.withLock { seen in
            defer { seen[key] = max(seen[key] ?? 0, total) }
            return total - (seen[key] ?? 0)
        }
        let counter = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        if added > 0 { counter.increment(by: Int64(added)) }
    }

    /// Reads the fleet's own totals into the metrics.
    public func refresh(_ fleet: Fleet) async {
        for (answered, count) in fleet.dnsCounters.answered {
            let type = answered.type.map { "\($0)" } ?? "unreadable"
            advance("edgesim_dns_answers_total", [("type", type), ("rcode", Self.mnemonic(answered.code))], to: count)
        }
        for (app, count) in Dictionary(grouping: fleet.rotatorIfStarted?.rotations ?? [], by: \.app).mapValues(\.count) {
            advance("edgesim_rotations_total", [("app", app)], to: count)
        }
        for name in fleet.plan.edgeNodes {
            let up = (fleet.nodes[name]?.isRunning ?? false) && !fleet.router.isDown(name)
            CoreMetrics.Gauge(label: "edgesim_node_up", dimensions: [("node", name)], factory: factory).record(up ? 1 : 0)
        }
        for link in fleet.network.linkCounts {
            let between = [("a", link.a), ("b", link.b)]
            advance("edgesim_link_packets_total", between + [("result", "carried")], to: link.carried)
            advance("edgesim_link_packets_total", between + [("result", "lost")], to: link.lost)
        }
        for (name, node) in fleet.nodes.sorted(by: { $0.key < $1.key })
        where node.isRunning && !fleet.router.isDown(name) && fleet.plan.smartRouting(for: name) != nil {
            guard let report = await node.smartRouting() else { continue }
            for measurement in report.measurements where measurement.answering {
                CoreMetrics.Gauge(
                    label: "edgesim_probe_rtt_seconds", dimensions: [("node", name), ("target", measurement.target)], factory: factory
                )
                .record(measurement.rttMs / 1000)
            }
            for route in report.routes {
                let via = route.via.isEmpty ? "direct" : route.via.joined(separator: ">")
                CoreMetrics.Gauge(
                    label: "edgesim_chosen_path_expected_seconds",
                    dimensions: [("node", name), ("destination", route.destination), ("via", via)], factory: factory
                ).record(route.expectedMs / 1000)
            }
        }
    }

    /// The response code as dig prints it.
    static func mnemonic(_ code: DNSResponseCode) -> String {
        switch code {
        case .noError: return "NOERROR"
        case .formatError: return "FORMERR"
        case .serverFailure: return "SERVFAIL"
        case .nameError: return "NXDOMAIN"
        case .notImplemented: return "NOTIMP"
        case .refused: return "REFUSED"
        }
    }
}
