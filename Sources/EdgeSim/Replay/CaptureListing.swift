import EdgeModel
import EdgePcap
import Foundation

/// `edgesim pcap inspect`: a capture's flows as a table (like `tshark -z conv`), with the
/// application each would reach in a scenario, what was skipped, and every problem found.
public struct CaptureListing: Sendable, Codable {
    public struct Row: Sendable, Codable, Hashable {
        public var number: Int
        public var transport: String
        public var client: String
        public var server: String
        public var packetsToServer: Int
        public var packetsToClient: Int
        public var bytesToServer: Int
        public var bytesToClient: Int
        /// Seconds after the capture's first record.
        public var start: Double
        public var duration: Double
        public var ending: String
        /// Why this side is the client.
        public var clientFrom: String
        /// The application it maps to in the scenario given, if any.
        public var application: String?
        public var retransmissions: Int
        public var startedBeforeCapture: Bool
    }

    public var file: String
    public var linkType: String
    public var records: Int
    public var seconds: Double
    public var flows: [Row]
    public var skipped: [String: Int]
    public var problems: [String]

    public init(_ capture: Capture, applications: [Application]? = nil) {
        file = capture.file
        linkType = "\(capture.format), \(capture.linkTypeDescription)"
        records = capture.records
        let start = capture.firstTime ?? 0
        seconds = (capture.lastTime ?? start) - start
        flows = capture.flows.enumerated().map { index, flow in
            Row(
                number: index + 1, transport: flow.transport.rawValue, client: flow.client.description, server: flow.server.description,
                packetsToServer: flow.packetsToServer, packetsToClient: flow.packetsToClient, bytesToServer: flow.bytesToServer,
                bytesToClient: flow.bytesToClient, start: flow.firstTime - start, duration: flow.duration, ending: flow.ending.rawValue,
                clientFrom: flow.clientFrom, application: applications.flatMap { ReplayPlan.application(for: flow, among: $0)?.id },
                retransmissions: flow.retransmissions, startedBeforeCapture: flow.startedBeforeCapture)
        }
        skipped = capture.skipped
        problems = capture.problems
    }

    public func text(showApplications: Bool) -> String {
        var lines = [
            String(
                format: "%@: %@, %d records over %.3f s, %d flows", file, linkType, records, seconds, flows.count)
        ]
        if !flows.isEmpty {
            var header = ["#", "proto", "client", "server", "packets →/←", "bytes →/←", "start s", "duration s", "end"]
            if showApplications { header.append("application") }
            var rows = [header]
            for flow in flows {
                var row = [
                    "\(flow.number)", flow.transport, flow.client, flow.server, "\(flow.packetsToServer)/\(flow.packetsToClient)",
                    "\(flow.bytesToServer)/\(flow.bytesToClient)", String(format: "%.3f", flow.start),
                    String(format: "%.3f", flow.duration),
                    flow.transport == "udp" ? "-" : flow.ending + (flow.startedBeforeCapture ? " (began before the capture)" : ""),
                ]
                if showApplications { row.append(flow.application ?? "-") }
                rows.append(row)
            }
            lines += RunReport.table(rows)
        }
        let unsure = flows.filter {
            !$0.clientFrom.hasPrefix("it sent the SYN") && !$0.clientFrom.hasPrefix("it was sent") && $0.transport == "tcp"
        }
        for flow in unsure { lines.append("flow \(flow.number): client chosen as \(flow.clientFrom)") }
        let retransmitted = flows.reduce(0) { $0 + $1.retransmissions }
        if retransmitted > 0 { lines.append("retransmitted segments (each byte counted once): \(retransmitted)") }
        if !skipped.isEmpty {
            lines.append(
                "not TCP or UDP, skipped: " + skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
        for problem in problems { lines.append("problem: \(problem)") }
        return lines.joined(separator: "\n")
    }

    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }
}
