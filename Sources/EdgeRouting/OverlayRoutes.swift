import EdgeModel

extension PathTable {
    /// A path through the overlay: from an edge node, through any number of other edge nodes,
    /// to a destination host, each segment crossing the network as the internet routes it.
    public struct OverlayPath: Sendable, Hashable {
        /// Entry, relays, destination.
        public var hops: [String]
        public var roundTrip: Duration
    }

    /// The fastest overlay path from `entry` to `destination`: the best any smart routing could
    /// do on this network (ground truth for benchmarks). `maximumRelays` bounds the relays.
    public func bestOverlayPath(from entry: String, to destination: String, maximumRelays: Int = .max) -> OverlayPath? {
        let relays = topology.edgeNodes.map(\.name).filter { $0 != entry && $0 != destination && !isDown($0) }
        var segment: [LinkKey: Duration?] = [:]
        func cost(_ a: String, _ b: String) -> Duration? {
            let key = LinkKey(a, b)
            if let known = segment[key] { return known }
            let found = path(from: a, to: b)?.roundTrip
            segment[key] = found
            return found
        }
        // Bellman-Ford by number of relays, so the bound on relays holds exactly.
        var best: [String: OverlayPath] = [entry: OverlayPath(hops: [entry], roundTrip: .zero)]
        var answer = cost(entry, destination).map { OverlayPath(hops: [entry, destination], roundTrip: $0) }
        var round = 0
        while round < min(maximumRelays, relays.count) {
            round += 1
            var next = best
            for (host, reached) in best {
                for relay in relays where !reached.hops.contains(relay) {
                    guard let step = cost(host, relay) else { continue }
                    let candidate = OverlayPath(hops: reached.hops + [relay], roundTrip: reached.roundTrip + step)
                    if next[relay].map({ candidate.roundTrip < $0.roundTrip }) ?? true { next[relay] = candidate }
                }
            }
            best = next
            for (host, reached) in best where host != entry {
                guard let last = cost(host, destination) else { continue }
                let candidate = OverlayPath(hops: reached.hops + [destination], roundTrip: reached.roundTrip + last)
                if answer.map({ candidate.roundTrip < $0.roundTrip }) ?? true { answer = candidate }
            }
        }
        return answer
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
