import EdgePcap
import Foundation

/// Everything a run found: each check with its measured figure, traffic per client and
/// application, rotations, node exits. Written as JSON (`--report`), JUnit XML (`--junit`) and
/// a summary for people.
public struct RunReport: Sendable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case passed
        case failed
        /// Stopped by Ctrl-C or SIGTERM before the end.
        case interrupted
        /// Could not run (the fleet did not start).
        case error
    }

    public struct Check: Sendable, Codable, Hashable {
        public var name: String
        public var passed: Bool
        /// The figure measured, in words and numbers ("99.5% (199/200)").
        public var measured: String
        public var expected: String
        public var detail: String?

        public init(name: String, passed: Bool, measured: String, expected: String, detail: String? = nil) {
            self.name = name
            self.passed = passed
            self.measured = measured
            self.expected = expected
            self.detail = detail
        }
    }

    public struct Traffic: Sendable, Codable, Hashable {
        public var app: String
        public var client: String
        public var transport: String
        public var attempted: Int
        public var succeeded: Int
        public var connectP50Ms: Double?
        public var connectP99Ms: Double?
        public var firstByteP50Ms: Double?
        public var firstByteP99Ms: Double?
        /// The most common errors, with how often each happened.
        public var errors: [String: Int]
        /// Connections and flows that succeeded, by the address family they used (ipv4, ipv6).
        public var families: [String: Int] = [:]
        /// Which node served this client's connections, with counts.
        public var servedBy: [String: Int]
        /// Smart-routed connections by the path they took ("maa→nrt": entered at maa, relayed by nrt).
        public var relayed: [String: Int] = [:]
        /// Successful connections and flows by time to first byte: counts in the buckets
        /// `RunReport.histogramEdgesMs` bounds (the last open-ended).
        public var firstByteHistogram: [Int] = []
    }

    /// Upper bounds, in ms, of the latency histogram's buckets; a last bucket takes the rest.
    public static let histogramEdgesMs: [Double] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]

    /// Counts of `values` in the buckets `histogramEdgesMs` bounds.
    public static func histogram(_ values: [Double]) -> [Int] {
        var counts = Array(repeating: 0, count: histogramEdgesMs.count + 1)
        for value in values { counts[histogramEdgesMs.firstIndex { value <= $0 } ?? histogramEdgesMs.count] += 1 }
        return counts
    }

    /// A step of the timeline as it was carried out.
    public struct TimelineEntry: Sendable, Codable, Hashable {
        /// Seconds since the run started.
        public var at: Double
        /// traffic, link, node, origin, replay, originName.
        public var kind: String
        public var text: String

        public init(at: Double, kind: String, text: String) {
            self.at = at
            self.kind = kind
            self.text = text
        }
    }

    public struct Rotation: Sendable, Codable, Hashable {
        public var app: String
        public var old: [String]
        public var new: [String]
        /// Seconds since the run started.
        public var publishedAt: Double
        public var retiredAt: Double?
    }

    public struct MailRow: Sendable, Codable, Hashable {
        public var origin: String
        /// The address the origin checked (the client's when PROXY told it, else the edge's).
        public var from: String
        /// `accepted`, or the refusal reply.
        public var reply: String
        public var count: Int
    }

    /// A node process (or the runner) when the fleet was up and at the end.
    public struct ProcessRow: Sendable, Codable, Hashable {
        public var name: String
        public var start: ProcessUsage?
        public var end: ProcessUsage?
    }

    public struct NodeDown: Sendable, Codable, Hashable {
        public var node: String
        public var at: Double
        public var backAt: Double?
    }

    /// One replay step's flows to one destination (application or the fleet's DNS).
    public struct Replay: Sendable, Codable, Hashable {
        public var step: Int
        public var capture: String
        public var client: String
        public var destination: String
        public var flows: Int
        public var succeeded: Int
        /// Flows whose replies differed from the capture's.
        public var mismatched: Int
        public var sends: Int
        public var bytesSent: Int
        public var receives: Int
        public var bytesReceived: Int
        /// Lateness of sends against the capture's schedule; nil at speed 0.
        public var timingP50Ms: Double?
        public var timingP99Ms: Double?
        public var timingMaxMs: Double?
        /// Sends held back past their captured time by replies that came later than captured.
        public var heldForReplies: Int
        /// Why flows failed, with how often.
        public var errors: [String: Int]
        /// Flows of the capture the step left out, by reason.
        public var skipped: [String: Int] = [:]
    }

    /// A capture written during the run.
    public struct CaptureRow: Sendable, Codable, Hashable {
        public var host: String
        public var file: String
        public var packets: Int
        public var bytes: Int
        public var dropped: Int
        public var overLimit: Int

        public init(host: String, summary: LiveCapture.Summary) {
            self.host = host
            file = summary.file
            packets = summary.packets
            bytes = summary.bytes
            dropped = summary.dropped
            overLimit = summary.overLimit
        }
    }

    public struct NodeExit: Sendable, Codable, Hashable {
        public var node: String
        public var status: Int32
        public var expected: Bool
        public var at: Double
    }

    public var scenario: String
    public var mode: String
    public var outcome: Outcome
    /// Seconds since the epoch.
    public var started: Double
    public var durationSeconds: Double
    public var checks: [Check] = []
    public var traffic: [Traffic] = []
    public var rotations: [Rotation] = []
    public var nodeExits: [NodeExit] = []
    /// Memory and descriptors of the node processes and the runner.
    public var processes: [ProcessRow] = []
    /// Nodes that stopped answering their control channel while running.
    public var nodeDowns: [NodeDown] = []
    /// What mail origins did with the messages, by connecting address as they saw it.
    public var mail: [MailRow] = []
    public var replays: [Replay] = []
    public var captures: [CaptureRow] = []
    /// Things the reader should know: where the DNS answered, limits of the mode, errors.
    public var notes: [String] = []
    /// The timeline's steps when they were carried out (rotations, node downs and exits have
    /// rows of their own).
    public var timeline: [TimelineEntry] = []

    public init(scenario: String, mode: String, outcome: Outcome, started: Double, durationSeconds: Double) {
        self.scenario = scenario
        self.mode = mode
        self.outcome = outcome
        self.started = started
        self.durationSeconds = durationSeconds
    }

    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// JUnit XML: one test case per check, so CI shows each.
    public func junit() -> String {
        let failures = checks.filter { !$0.passed }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites tests=\"\(checks.count)\" failures=\"\(failures)\" time=\"\(String(format: "%.3f", durationSeconds))\">\n"
        xml +=
            "  <testsuite name=\"\(Self.escape(scenario))\" tests=\"\(checks.count)\" failures=\"\(failures)\" errors=\"\(outcome == .error ? 1 : 0)\" time=\"\(String(format: "%.3f", durationSeconds))\">\n"
        for check in checks {
            xml += "    <testcase classname=\"edgesim.\(Self.escape(scenario))\" name=\"\(Self.escape(check.name))\">\n"
            if !check.passed {
                let message = "expected \(check.expected), measured \(check.measured)"
                xml += "      <failure message=\"\(Self.escape(message))\">\(Self.escape(check.detail ?? message))</failure>\n"
            }
            xml += "      <system-out>\(Self.escape("measured \(check.measured); expected \(check.expected)"))</system-out>\n"
            xml += "    </testcase>\n"
        }
        if outcome == .error || outcome == .interrupted {
            xml += "    <testcase classname=\"edgesim.\(Self.escape(scenario))\" name=\"run\">\n"
            xml += "      <error message=\"\(outcome.rawValue)\">\(Self.escape(notes.joined(separator: "\n")))</error>\n"
            xml += "    </testcase>\n"
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    /// The summary printed at the end of a run.
    public func text() -> String {
        var lines: [String] = []
        lines.append(
            "scenario \(scenario) (\(mode) mode): \(outcome.rawValue.uppercased()) in \(String(format: "%.1f", durationSeconds)) s")
        if !traffic.isEmpty {
            lines.append("")
            lines.append("traffic:")
            let header = ["app", "client", "ok/total", "connect p50/p99 ms", "first byte p50/p99 ms", "served by"]
            var rows = [header]
            for row in traffic {
                rows.append([
                    row.app, row.client, "\(row.succeeded)/\(row.attempted)",
                    "\(Self.ms(row.connectP50Ms))/\(Self.ms(row.connectP99Ms))",
                    "\(Self.ms(row.firstByteP50Ms))/\(Self.ms(row.firstByteP99Ms))",
                    row.servedBy.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
                ])
            }
            lines += Self.table(rows)
            for row in traffic where row.families["ipv6", default: 0] > 0 {
                let parts = row.families.sorted { $0.key < $1.key }.map { "\($0.value) over \($0.key == "ipv6" ? "IPv6" : "IPv4")" }
                lines.append("  \(row.client) → \(row.app): \(parts.joined(separator: ", "))")
            }
            for row in traffic where !row.relayed.isEmpty {
                let paths = row.relayed.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                lines.append("  \(row.client) → \(row.app): relayed by smart routing: \(paths)")
            }
            for row in traffic where !row.errors.isEmpty {
                for (error, count) in row.errors.sorted(by: { $0.value > $1.value }).prefix(3) {
                    lines.append("  \(row.client) → \(row.app): \(count)× \(error)")
                }
            }
        }
        if !replays.isEmpty {
            lines.append("")
            lines += Self.replayLines(replays)
        }
        if !captures.isEmpty {
            lines.append("")
            lines.append("captures:")
            for row in captures {
                var line = "  \(row.host) → \(row.file): \(row.packets) packets, \(row.bytes) bytes"
                if row.dropped > 0 { line += "; \(row.dropped) dropped by the kernel" }
                if row.overLimit > 0 { line += "; \(row.overLimit) past the size limit, not written" }
                lines.append(line)
            }
        }
        if !mail.isEmpty {
            lines.append("")
            lines.append("mail, as the origins saw it:")
            for row in mail { lines.append("  \(row.origin) from \(row.from): \(row.count)× \(row.reply)") }
        }
        if !rotations.isEmpty {
            lines.append("")
            lines.append("rotations:")
            for rotation in rotations {
                let retired = rotation.retiredAt.map { String(format: "retired at %.1f s", $0) } ?? "still draining"
                lines.append(
                    "  \(String(format: "%6.1f s", rotation.publishedAt))  \(rotation.app): \(rotation.old.joined(separator: ", ")) → \(rotation.new.joined(separator: ", ")), old \(retired)"
                )
            }
        }
        if !processes.isEmpty {
            lines.append("")
            lines.append("processes (resident memory and descriptors, fleet up → end):")
            func text(_ usage: ProcessUsage?) -> String {
                usage.map { String(format: "%.1f MiB, %d fds", Double($0.rssBytes) / 1_048_576, $0.descriptors) } ?? "-"
            }
            for row in processes { lines.append("  \(row.name): \(text(row.start)) → \(text(row.end))") }
        }
        if !nodeDowns.isEmpty {
            lines.append("")
            lines.append("nodes that stopped answering:")
            for down in nodeDowns {
                let back = down.backAt.map { String(format: "answered again at %.1f s", $0) } ?? "did not answer again"
                lines.append("  \(String(format: "%6.1f s", down.at))  \(down.node) reported down; \(back)")
            }
        }
        if !nodeExits.isEmpty {
            lines.append("")
            lines.append("node exits:")
            for exit in nodeExits {
                lines.append(
                    "  \(String(format: "%6.1f s", exit.at))  \(exit.node) status \(exit.status)\(exit.expected ? " (as the scenario asked)" : " (unexpected)")"
                )
            }
        }
        lines.append("")
        lines.append("checks:")
        for check in checks {
            lines.append("  \(check.passed ? "PASS" : "FAIL")  \(check.name): \(check.measured) (expected \(check.expected))")
            if !check.passed, let detail = check.detail { lines.append("        \(detail)") }
        }
        if checks.isEmpty { lines.append("  (none)") }
        if !notes.isEmpty {
            lines.append("")
            lines += notes.map { "note: \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    /// The replayed-captures table and what went wrong, for a run's summary and `edgesim replay`.
    public static func replayLines(_ replays: [Replay]) -> [String] {
        var lines: [String] = []
        lines.append("replayed captures:")
        let header = ["step", "capture", "from → to", "ok/flows", "sent", "received", "timing p50/p99/max ms"]
        var rows = [header]
        for row in replays {
            rows.append([
                "\(row.step)", row.capture, "\(row.client) → \(row.destination)", "\(row.succeeded)/\(row.flows)",
                "\(row.sends) (\(row.bytesSent) B)", "\(row.receives) (\(row.bytesReceived) B)",
                "\(Self.ms(row.timingP50Ms))/\(Self.ms(row.timingP99Ms))/\(Self.ms(row.timingMaxMs))",
            ])
        }
        lines += Self.table(rows)
        for row in replays {
            if row.heldForReplies > 0 {
                lines.append(
                    "  step \(row.step) → \(row.destination): \(row.heldForReplies) sends held over 1 ms past their time by the network (a connection, replies or a full socket slower than captured)"
                )
            }
            if row.mismatched > 0 {
                lines.append("  step \(row.step) → \(row.destination): \(row.mismatched) flows replied differently from the capture")
            }
            for (error, count) in row.errors.sorted(by: { $0.value > $1.value }).prefix(3) {
                lines.append("  step \(row.step) → \(row.destination): \(count)× \(error)")
            }
            // Left-out flows are the step's, said once.
            guard row == replays.first(where: { $0.step == row.step }) else { continue }
            for (reason, count) in row.skipped.sorted(by: { $0.key < $1.key }) {
                lines.append("  step \(row.step): \(count) flows left out: \(reason)")
            }
        }

        return lines
    }

    static func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }

    static func table(_ rows: [[String]]) -> [String] {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            let line =
                "  "
                + row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(
                    separator: "  ")
            // No padding after the last column.
            return String(line.reversed().drop { $0 == " " }.reversed())
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
