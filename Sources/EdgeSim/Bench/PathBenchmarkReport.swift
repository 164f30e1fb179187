import EdgeProxy
import Foundation

/// What `edgesim bench paths` found, as JSON, a terminal table and an SVG chart.
public struct PathBenchmarkReport: Sendable, Codable {
    public struct Pair: Sendable, Codable {
        public var edge: String
        public var origin: String
        /// Round trip of the internet's own path from the edge to the origin.
        public var directMs: Double
        /// Round trip, by the topology, of the path the edge chose.
        public var chosenMs: Double
        /// The best round trip through any edge nodes the topology allows.
        public var bestMs: Double
        /// Median echo round trip measured through the chosen path on an open connection.
        public var measuredMs: Double?
        /// From connecting to the first echoed byte, origin handshake included.
        public var firstByteMs: Double?
        public var chosenPath: [String]
        public var bestPath: [String]
        /// The chosen path is within max(1 ms, 2%) of the best.
        public var optimal: Bool

        enum CodingKeys: String, CodingKey {
            case edge, origin, optimal
            case directMs = "direct_ms"
            case chosenMs = "chosen_ms"
            case bestMs = "best_ms"
            case measuredMs = "measured_ms"
            case firstByteMs = "first_byte_ms"
            case chosenPath = "chosen_path"
            case bestPath = "best_path"
        }
    }

    public struct Reroute: Sendable, Codable {
        public var edge: String
        public var origin: String
        public var change: String
        public var before: [String]
        public var after: [String]
        /// Seconds from the cut until the edge chose a path without the link; nil if it never did.
        public var secondsToMove: Double?
        public var probeIntervals: Double?
        /// Connections opened between the cut and the move that failed.
        public var failedConnections: Int
        /// Connections opened after the move that failed (must be 0).
        public var failedAfterMove: Int

        enum CodingKeys: String, CodingKey {
            case edge, origin, change, before, after
            case secondsToMove = "seconds_to_move"
            case probeIntervals = "probe_intervals"
            case failedConnections = "failed_connections"
            case failedAfterMove = "failed_after_move"
        }
    }

    public struct Summary: Sendable, Codable {
        public var pairs: Int
        public var optimal: Int
        public var optimalFraction: Double
        public var medianImprovementPct: Double
        public var meanImprovementPct: Double
        public var relayed: Int
        public var probeIntervalSeconds: Double

        enum CodingKeys: String, CodingKey {
            case pairs, optimal, relayed
            case optimalFraction = "optimal_fraction"
            case medianImprovementPct = "median_improvement_pct"
            case meanImprovementPct = "mean_improvement_pct"
            case probeIntervalSeconds = "probe_interval_s"
        }
    }

    public var topology: String
    public var pairs: [Pair]
    public var reroutes: [Reroute]
    public var summary: Summary
    /// What every edge measured and chose when the pairs were read.
    public var edges: [SmartRoutingReport]

    public init(topology: String, probeIntervalSeconds: Double, pairs: [Pair], reroutes: [Reroute], edges: [SmartRoutingReport] = []) {
        self.topology = topology
        self.edges = edges
        self.pairs = pairs
        self.reroutes = reroutes
        let improvements = pairs.map { $0.directMs > 0 ? ($0.directMs - $0.chosenMs) / $0.directMs * 100 : 0 }.sorted()
        let optimal = pairs.filter(\.optimal).count
        summary = Summary(
            pairs: pairs.count, optimal: optimal, optimalFraction: pairs.isEmpty ? 0 : Double(optimal) / Double(pairs.count),
            medianImprovementPct: improvements.isEmpty ? 0 : improvements[improvements.count / 2],
            meanImprovementPct: improvements.isEmpty ? 0 : improvements.reduce(0, +) / Double(improvements.count),
            relayed: pairs.filter { $0.chosenPath.count > 2 }.count, probeIntervalSeconds: probeIntervalSeconds)
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    static func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }

    public var table: String {
        var lines = ["paths on \(topology): \(summary.pairs) (edge, origin) pairs, probes every \(summary.probeIntervalSeconds) s", ""]
        let header = ["edge", "origin", "direct ms", "chosen ms", "best ms", "measured ms", "chosen path", "optimal"]
        var rows = [header]
        for pair in pairs {
            rows.append([
                pair.edge, pair.origin, Self.format(pair.directMs), Self.format(pair.chosenMs), Self.format(pair.bestMs),
                Self.format(pair.measuredMs), pair.chosenPath.joined(separator: "→"), pair.optimal ? "yes" : "NO",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        lines.append("")
        lines.append(
            "optimal: \(summary.optimal)/\(summary.pairs) (\(String(format: "%.1f", summary.optimalFraction * 100))%); relayed: \(summary.relayed); improvement over direct: median \(String(format: "%.1f", summary.medianImprovementPct))%, mean \(String(format: "%.1f", summary.meanImprovementPct))%"
        )
        for reroute in reroutes {
            lines.append(
                "\(reroute.change) (\(reroute.edge)→\(reroute.origin)): \(reroute.before.joined(separator: "→")) became \(reroute.after.joined(separator: "→")) after \(Self.format(reroute.secondsToMove)) s (\(Self.format(reroute.probeIntervals)) probe intervals); \(reroute.failedConnections) connections failed meanwhile, \(reroute.failedAfterMove) after"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// Direct, chosen and best round trip per pair as horizontal bars.
    public var svg: String {
        let rowHeight = 30.0
        let left = 190.0
        let width = 900.0
        let top = 50.0
        let maximum = max(1, pairs.map { max($0.directMs, $0.chosenMs, $0.bestMs) }.max() ?? 1)
        let scale = (width - left - 40) / maximum
        let height = top + Double(pairs.count) * rowHeight + 40
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"10\" y=\"20\" font-size=\"14\">\(topology): round trip per (edge, origin), ms: direct (grey), chosen (blue), best (green)</text>",
        ]
        for (index, pair) in pairs.enumerated() {
            let y = top + Double(index) * rowHeight
            out.append("<text x=\"10\" y=\"\(y + 15)\">\(pair.edge) → \(pair.origin)\(pair.optimal ? "" : " *")</text>")
            for (offset, (value, colour)) in [(pair.directMs, "#999"), (pair.chosenMs, "#2b6cb0"), (pair.bestMs, "#38a169")].enumerated() {
                let barY = y + Double(offset) * 8
                out.append(
                    "<rect x=\"\(left)\" y=\"\(barY)\" width=\"\(String(format: "%.1f", value * scale))\" height=\"7\" fill=\"\(colour)\"><title>\(String(format: "%.1f", value)) ms</title></rect>"
                )
            }
            out.append("<text x=\"\(left + pair.directMs * scale + 4)\" y=\"\(y + 7)\">\(Self.format(pair.directMs))</text>")
            out.append("<text x=\"\(left + pair.chosenMs * scale + 4)\" y=\"\(y + 15)\">\(Self.format(pair.chosenMs))</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n")
    }
}
