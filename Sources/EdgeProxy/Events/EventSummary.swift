import Foundation

/// Counts, bytes and durations of events, grouped as the reference asks: by app, edge node,
/// event and IP version.
public struct EventSummary: Sendable, Hashable {
    public struct Group: Sendable, Hashable {
        public var app: String
        public var node: String
        public var event: ProxyEvent.Kind
        public var ipVersion: Int
    }

    public struct Figures: Sendable, Hashable {
        public var count: Int
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        /// Milliseconds; nil when no event in the group has a duration.
        public var durationMedian: Double?
        public var durationP90: Double?
        public var durationP99: Double?
    }

    public var groups: [(group: Group, figures: Figures)]

    public static func == (lhs: EventSummary, rhs: EventSummary) -> Bool {
        lhs.groups.map(\.group) == rhs.groups.map(\.group) && lhs.groups.map(\.figures) == rhs.groups.map(\.figures)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(groups.map(\.group))
    }

    public init(_ events: [ProxyEvent]) {
        var accumulator = Accumulator()
        for event in events { accumulator.add(event) }
        self = accumulator.summary
    }

    /// Running figures, event by event, in memory bounded by the number of groups: right
    /// however long a node runs.
    public struct Accumulator: Sendable {
        private struct Running: Sendable {
            var count = 0
            var bytesIn: UInt64 = 0
            var bytesOut: UInt64 = 0
            var durations = DurationSketch()
        }

        private var running: [Group: Running] = [:]

        public init() {}

        public mutating func add(_ event: ProxyEvent) {
            let group = Group(app: event.app, node: event.node, event: event.event, ipVersion: event.ipVersion)
            // One lookup, and the figures changed in place.
            Self.count(event, into: &running[group, default: Running()])
        }

        private static func count(_ event: ProxyEvent, into figures: inout Running) {
            figures.count += 1
            figures.bytesIn &+= event.bytesIn
            figures.bytesOut &+= event.bytesOut
            if let duration = event.durationMs { figures.durations.add(duration) }
        }

        public var summary: EventSummary {
            EventSummary(
                groups: running.map { group, figures in
                    (
                        group,
                        Figures(
                            count: figures.count, bytesIn: figures.bytesIn, bytesOut: figures.bytesOut,
                            durationMedian: figures.durations.percentile(0.5), durationP90: figures.durations.percentile(0.9),
                            durationP99: figures.durations.percentile(0.99))
                    )
                })
        }
    }

    init(groups: [(group: Group, figures: Figures)]) {
        self.groups = groups.sorted {
            ($0.group.app, $0.group.node, $0.group.event.rawValue, $0.group.ipVersion) < (
                $1.group.app, $1.group.node, $1.group.event.rawValue, $1.group.ipVersion
            )
        }
    }

    /// Nearest-rank percentile of sorted values.
    public static func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }

    /// A fixed-width table for people.
    public var table: String {
        var lines = ["app                  node         event           ip  count    bytes in   bytes out   median ms    p90 ms    p99 ms"]
        func ms(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }
        for (group, figures) in groups {
            lines.append(
                [
                    pad(group.app, 20), pad(group.node, 12), pad(group.event.rawValue, 15), pad("v\(group.ipVersion)", 3),
                    pad(String(figures.count), 6, right: true), pad(String(figures.bytesIn), 11, right: true),
                    pad(String(figures.bytesOut), 11, right: true), pad(ms(figures.durationMedian), 11, right: true),
                    pad(ms(figures.durationP90), 9, right: true), pad(ms(figures.durationP99), 9, right: true),
                ].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let clipped = String(text.prefix(width))
        let fill = String(repeating: " ", count: width - clipped.count)
        return right ? fill + clipped : clipped + fill
    }
}
