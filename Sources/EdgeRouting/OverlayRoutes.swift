import EdgeModel

extension PathTable {
    /// A path through the overlay: from an edge node, through any number of other edge nodes,
    /// to a destination host, each segment crossing the network as the internet routes it.
    public struct OverlayPath: Sendable, Hashable {
        /// Entry, relays, destination.
        public var hops: [String]
        public var roundTrip: Duration
    }

    /// Round trips between every live edge node and every host, as the internet routes them:
    /// worked out once per state of the network, then asked for many pairs.
    public struct Overlay: Sendable {
        let relays: [String]
        let roundTrips: [String: [String: Duration]]

        public func roundTrip(_ a: String, _ b: String) -> Duration? {
            roundTrips[a]?[b] ?? roundTrips[b]?[a]
        }

        /// The round trip of an overlay path's hops; nil when a segment has no path.
        public func roundTrip(through hops: [String]) -> Duration? {
            var total = Duration.zero
            for (a, b) in zip(hops, hops.dropFirst()) {
                guard let step = roundTrip(a, b) else { return nil }
                total += step
            }
            return total
        }

        /// The fastest overlay path from `entry` to `destination` with at most `maximumRelays`
        /// relays: the best any smart routing could do (ground truth for benchmarks).
        public func best(from entry: String, to destination: String, maximumRelays: Int = .max) -> OverlayPath? {
            let relays = self.relays.filter { $0 != entry && $0 != destination }
            // Bellman-Ford by number of relays, so the bound on relays holds exactly.
            var reached: [String: OverlayPath] = [entry: OverlayPath(hops: [entry], roundTrip: .zero)]
            var answer = roundTrip(entry, destination).map { OverlayPath(hops: [entry, destination], roundTrip: $0) }
            var round = 0
            while round < min(maximumRelays, relays.count) {
                round += 1
                var next = reached
                for (host, path) in reached {
                    for relay in relays where !path.hops.contains(relay) {
                        guard let step = roundTrip(host, relay) else { continue }
                        let candidate = OverlayPath(hops: path.hops + [relay], roundTrip: path.roundTrip + step)
                        if next[relay].map({ candidate.roundTrip < $0.roundTrip }) ?? true { next[relay] = candidate }
                    }
                }
                guard next != reached else { break }
                reached = next
                for (host, path) in reached where host != entry {
                    guard let last = roundTrip(host, destination) else { continue }
                    let candidate = OverlayPath(hops: path.hops + [destination], roundTrip: path.roundTrip + last)
                    if answer.map({ candidate.roundTrip < $0.roundTrip }) ?? true { answer = candidate }
                }
            }
            return answer
        }
    }

    /// The overlay as the network stands now.
    public func overlay() -> Overlay {
        let relays = topology.edgeNodes.map(\.name).filter { !isDown($0) }
        var roundTrips: [String: [String: Duration]] = [:]
        for relay in relays { roundTrips[relay] = routes(from: relay).mapValues(\.roundTrip) }
        return Overlay(relays: relays, roundTrips: roundTrips)
    }

    /// The fastest overlay path from `entry` to `destination` (see `Overlay.best`).
    public func bestOverlayPath(from entry: String, to destination: String, maximumRelays: Int = .max) -> OverlayPath? {
        overlay().best(from: entry, to: destination, maximumRelays: maximumRelays)
    }

    /// The round trip of an overlay path's hops, each segment as the internet routes it; nil
    /// when a segment has no path.
    public func roundTrip(through hops: [String]) -> Duration? {
        var total = Duration.zero
        for (a, b) in zip(hops, hops.dropFirst()) {
            guard let step = path(from: a, to: b)?.roundTrip else { return nil }
            total += step
        }
        return total
    }
}
