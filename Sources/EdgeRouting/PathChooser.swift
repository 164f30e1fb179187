/// Chooses, for one entry edge, how to reach each destination: straight, or through one or two
/// other edge nodes, from the entry's own measurements and those its peers told it. Pure: the
/// caller hands in measurements and the time; nothing here opens a socket.
///
/// A path's cost is its expected delay: the round trips of its segments added up, plus the
/// chance that a packet is lost anywhere on it times what a loss costs (a retransmission
/// timeout). The current path is kept until another is better by more than the hysteresis, so
/// measurement noise does not flap routes; a path with a segment that stopped answering is
/// dropped at once.
public struct PathChooser: Sendable {
    public struct Choice: Sendable, Hashable {
        /// Edge nodes between the entry and the destination, in order; empty is direct.
        public var via: [String]
        /// Expected delay of the path as measured.
        public var expected: Duration
        /// The measured round trip, without the loss penalty.
        public var rtt: Duration

        public init(via: [String], expected: Duration, rtt: Duration) {
            self.via = via
            self.expected = expected
            self.rtt = rtt
        }
    }

    public struct Settings: Sendable, Hashable {
        /// Most edge nodes a relayed path goes through. Default 2.
        public var maximumRelays = 2
        /// A new path must be better than the current by more than both of these. Defaults 1 ms, 1%.
        public var hysteresis: Duration = .milliseconds(1)
        public var hysteresisFraction = 0.01
        /// What a lost packet costs: a lost SYN waits 1 s before it is sent again. Default 1 s.
        public var lossPenalty: Duration = .seconds(1)

        public init() {}
    }

    public let entry: String
    public var settings: Settings
    public private(set) var current: [String: Choice] = [:]

    public init(entry: String, settings: Settings = Settings()) {
        self.entry = entry
        self.settings = settings
    }

    /// Chooses again for `destination`. `local` holds the entry's measurements (to peers by
    /// name and to destinations by key); `peers[name]` what that peer measured. Returns the
    /// choice now in force, or nil when nothing reaches the destination.
    public mutating func choose(
        _ destination: String, local: [String: PathMeasurement], peers: [String: [String: PathMeasurement]]
    ) -> Choice? {
        let candidates = self.candidates(destination, local: local, peers: peers)
        guard let best = candidates.min(by: { ($0.expected, $0.via.count) < ($1.expected, $1.via.count) }) else {
            current[destination] = nil
            return nil
        }
        if let kept = current[destination], let now = candidates.first(where: { $0.via == kept.via }) {
            let margin = max(settings.hysteresis, now.expected * settings.hysteresisFraction)
            if now.expected - best.expected <= margin {
                current[destination] = now
                return now
            }
        }
        current[destination] = best
        return best
    }

    /// Every path of up to `maximumRelays` relays whose segments all answer, with its cost.
    func candidates(
        _ destination: String, local: [String: PathMeasurement], peers: [String: [String: PathMeasurement]]
    ) -> [Choice] {
        var found: [Choice] = []
        func consider(_ via: [String], _ segments: [PathMeasurement?]) {
            guard segments.allSatisfy({ $0?.answering == true }) else { return }
            let measured = segments.compactMap { $0 }
            let rtt = measured.reduce(Duration.zero) { $0 + $1.rtt }
            let delivered = measured.reduce(1.0) { $0 * (1 - $1.loss) }
            found.append(Choice(via: via, expected: rtt + settings.lossPenalty * (1 - delivered), rtt: rtt))
        }
        consider([], [local[destination]])
        guard settings.maximumRelays > 0 else { return found }
        let relays = peers.keys.filter { $0 != entry && $0 != destination }.sorted()
        for first in relays {
            consider([first], [local[first], peers[first]?[destination]])
            guard settings.maximumRelays > 1 else { continue }
            for second in relays where second != first {
                consider([first, second], [local[first], peers[first]?[second], peers[second]?[destination]])
            }
        }
        return found
    }
}
