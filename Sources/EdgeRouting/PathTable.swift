import EdgeModel

/// Paths across the topology's links the way the internet picks them, with links cut, links
/// reshaped and hosts down as a scenario changes them: a pair's own link when it has one,
/// otherwise the path with the fewest hops, the lower latency breaking ties. BGP chooses by
/// policy and path length, not by delay, which is why an overlay that measures can beat it.
/// Only edge nodes carry traffic for others; clients and origins are ends of paths, never the
/// middle.
public struct PathTable: Sendable {
    /// The hosts a path crosses, first to last, and what its links add up to.
    public struct Path: Sendable, Hashable {
        public var hosts: [String]
        public var shape: LinkShape
    }

    public let topology: Topology
    private var shapes: [LinkKey: LinkShape]
    private var down: Set<String> = []

    public init(topology: Topology) {
        self.topology = topology
        var shapes: [LinkKey: LinkShape] = [:]
        for link in topology.links { shapes[LinkKey(link.a, link.b)] = link.shape }
        self.shapes = shapes
    }

    /// Cuts a link; paths go around it.
    public mutating func cut(_ a: String, _ b: String) { shapes[LinkKey(a, b)] = nil }

    /// Gives a link a new shape, or back its topology shape when `shape` is nil.
    public mutating func reshape(_ a: String, _ b: String, to shape: LinkShape?) {
        shapes[LinkKey(a, b)] = shape ?? topology.link(between: a, b)?.shape
    }

    public mutating func setDown(_ host: String, _ isDown: Bool) {
        if isDown { down.insert(host) } else { down.remove(host) }
    }

    public func isDown(_ host: String) -> Bool { down.contains(host) }

    public func shape(between a: String, _ b: String) -> LinkShape? { shapes[LinkKey(a, b)] }

    /// The path the internet would take from `source` to `destination`, or nil when none is left.
    public func path(from source: String, to destination: String) -> Path? {
        paths(from: source, stoppingAt: [destination])[destination]
    }

    /// The internet's path from `source` to every host it can reach.
    public func routes(from source: String) -> [String: Path] {
        paths(from: source, stoppingAt: [])
    }

    /// Live edge nodes that `client` can reach, nearest first: the order anycast picks them in.
    /// A path ends at the first edge node it meets, since that node holds the address too.
    /// Edge nodes that do not announce (`anycast:` exclusions) are never chosen, but may be crossed.
    public func nearestEdges(from client: String) -> [(node: String, path: Path)] {
        let edges = Set(topology.edgeNodes.map(\.name).filter(topology.announces)).subtracting(down)
        return paths(from: client, stoppingAt: edges)
            .filter { edges.contains($0.key) }
            .sorted { ($0.value.shape.latency, $0.key) < ($1.value.shape.latency, $1.key) }
            .map { ($0.key, $0.value) }
    }

    /// Dijkstra from `source` ordered by (hops, latency); hosts in `terminals` are reached but
    /// not passed through.
    private func paths(from source: String, stoppingAt terminals: Set<String>) -> [String: Path] {
        guard !down.contains(source) else { return [:] }
        let edges = Set(topology.edgeNodes.map(\.name))
        var neighbours: [String: [(String, LinkShape)]] = [:]
        for (key, shape) in shapes where !down.contains(key.a) && !down.contains(key.b) {
            neighbours[key.a, default: []].append((key.b, shape))
            neighbours[key.b, default: []].append((key.a, shape))
        }
        var best: [String: Path] = [source: Path(hosts: [source], shape: LinkShape())]
        var done: Set<String> = []
        while let (host, path) = best.filter({ !done.contains($0.key) }).min(by: { $0.value.precedes($1.value) }) {
            done.insert(host)
            let mayTransit = host == source || (edges.contains(host) && !terminals.contains(host))
            guard mayTransit else { continue }
            for (next, shape) in neighbours[host] ?? [] where !done.contains(next) {
                let candidate = Path(hosts: path.hosts + [next], shape: path.shape.followed(by: shape))
                if best[next].map({ candidate.precedes($0) }) ?? true { best[next] = candidate }
            }
        }
        best[source] = nil
        return best
    }
}

extension PathTable.Path {
    /// The internet's preference: fewer hops first, then lower latency.
    func precedes(_ other: PathTable.Path) -> Bool {
        (hosts.count, shape.latency) < (other.hosts.count, other.shape.latency)
    }

    /// Round-trip time across the path: both directions of every link.
    public var roundTrip: Duration { shape.latency * 2 }
}

extension LinkShape {
    /// Two links one after the other: delays add, losses compound, the narrower bandwidth wins.
    public func followed(by next: LinkShape) -> LinkShape {
        let bandwidths = [bandwidth, next.bandwidth].compactMap { $0 }
        return LinkShape(
            latency: latency + next.latency, jitter: jitter + next.jitter, loss: 1 - (1 - loss) * (1 - next.loss),
            bandwidth: bandwidths.min())
    }
}

/// A link's two ends, in either order.
struct LinkKey: Hashable, Sendable {
    let a: String
    let b: String

    init(_ x: String, _ y: String) {
        (a, b) = x < y ? (x, y) : (y, x)
    }
}
