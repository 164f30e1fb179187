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
    private var shapes: [LinkKey: LinkShape] {
        didSet { graph = LinkGraph(topology: topology, shapes: shapes, down: down) }
    }
    private var down: Set<String> = [] {
        didSet { graph = LinkGraph(topology: topology, shapes: shapes, down: down) }
    }
    /// The links as numbered adjacency lists, made again whenever a link or host changes.
    private var graph: LinkGraph

    public init(topology: Topology) {
        self.topology = topology
        var shapes: [LinkKey: LinkShape] = [:]
        for link in topology.links { shapes[LinkKey(link.a, link.b)] = link.shape }
        self.shapes = shapes
        graph = LinkGraph(topology: topology, shapes: shapes, down: [])
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
        guard !down.contains(source), let start = graph.index[source] else { return [:] }
        let count = graph.names.count
        var hops = [Int](repeating: .max, count: count)
        var latency = [Duration](repeating: .zero, count: count)
        var shape = [LinkShape](repeating: LinkShape(), count: count)
        var previous = [Int](repeating: -1, count: count)
        var done = [Bool](repeating: false, count: count)
        var queue = PathQueue()
        hops[start] = 0
        queue.push(.init(hops: 0, latency: .zero, host: start))
        while let next = queue.pop() {
            let host = next.host
            guard !done[host] else { continue }
            done[host] = true
            let mayTransit = host == start || (graph.isEdge[host] && !terminals.contains(graph.names[host]))
            guard mayTransit else { continue }
            for (neighbour, link) in graph.neighbours[host] where !done[neighbour] {
                let candidateHops = hops[host] + 1
                let candidateLatency = latency[host] + link.latency
                guard (candidateHops, candidateLatency) < (hops[neighbour], latency[neighbour]) else { continue }
                hops[neighbour] = candidateHops
                latency[neighbour] = candidateLatency
                shape[neighbour] = shape[host].followed(by: link)
                previous[neighbour] = host
                queue.push(.init(hops: candidateHops, latency: candidateLatency, host: neighbour))
            }
        }
        var found: [String: Path] = [:]
        for host in 0..<count where host != start && done[host] {
            var hosts: [String] = []
            var step = host
            while step != -1 {
                hosts.append(graph.names[step])
                step = previous[step]
            }
            found[graph.names[host]] = Path(hosts: hosts.reversed(), shape: shape[host])
        }
        return found
    }
}

/// The topology's hosts numbered, with the links between live hosts as adjacency lists.
struct LinkGraph: Sendable {
    var names: [String] = []
    var index: [String: Int] = [:]
    var isEdge: [Bool] = []
    var neighbours: [[(Int, LinkShape)]] = []

    init(topology: Topology, shapes: [LinkKey: LinkShape], down: Set<String>) {
        let edges = Set(topology.edgeNodes.map(\.name))
        for name in topology.hostNames where index[name] == nil {
            index[name] = names.count
            names.append(name)
            isEdge.append(edges.contains(name))
        }
        neighbours = Array(repeating: [], count: names.count)
        // Sorted, so equal paths are chosen the same way in every process.
        for (key, shape) in shapes.sorted(by: { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) })
        where !down.contains(key.a) && !down.contains(key.b) {
            guard let a = index[key.a], let b = index[key.b] else { continue }
            neighbours[a].append((b, shape))
            neighbours[b].append((a, shape))
        }
    }
}

/// A binary min-heap of hosts by (hops, latency): the next host Dijkstra settles.
struct PathQueue {
    struct Entry {
        var hops: Int
        var latency: Duration
        var host: Int

        func precedes(_ other: Entry) -> Bool { (hops, latency, host) < (other.hops, other.latency, other.host) }
    }

    private var items: [Entry] = []

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let first = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].precedes(items[smallest]) { smallest = left }
            if right < items.count, items[right].precedes(items[smallest]) { smallest = right }
            guard smallest != parent else { return first }
            items.swapAt(parent, smallest)
            parent = smallest
        }
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
