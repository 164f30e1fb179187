import EdgeModel
import EdgeNet
import EdgeRouting
import Synchronization

/// Anycast for the loopback fabric: a connection to an application address goes to the
/// nearest live edge node of the client it came from, across the path the topology gives;
/// the next nearest are the fallbacks. Link and host changes reroute new connections at once.
public final class FleetRouter: FabricRouter {
    public let plan: FleetPlan
    private let table: Mutex<PathTable>
    /// Nearest edges per client, worked out once per change of the network.
    private let nearest = Mutex<[String: [(node: String, path: PathTable.Path)]]>([:])

    public init(plan: FleetPlan) {
        self.plan = plan
        table = Mutex(PathTable(topology: plan.scenario.topology))
    }

    public func route(from client: IPAddress, to destination: Endpoint) -> FabricRoute? {
        if let origin = plan.hostByAddress[destination.address], plan.scenario.topology.origin(named: origin) != nil {
            // A node's connection to an origin: across the path from that node to the origin.
            guard let node = plan.hostByAddress[client], let path = path(from: node, to: origin),
                let listen = plan.originListenAddress(origin)
            else { return nil }
            return FabricRoute(
                clientHost: node,
                targets: [FabricTarget(host: origin, endpoint: Endpoint(listen, destination.port), source: client, shape: path.shape)])
        }
        // A tool outside the fleet (dig, curl, your client on 127.0.0.1) speaks for the first client.
        guard let host = plan.hostByAddress[client] ?? plan.scenario.topology.clients.first?.name else { return nil }
        let targets = nearestEdges(from: host).map { entry in
            FabricTarget(
                host: entry.node, endpoint: Endpoint(plan.nodeAddress(of: destination.address, on: entry.node), destination.port),
                source: plan.hostByAddress[client] == nil ? plan.hostAddresses[host]! : client, shape: entry.path.shape)
        }
        return targets.isEmpty ? nil : FabricRoute(clientHost: host, targets: targets)
    }

    public func shape(from clientHost: String, to targetHost: String) -> LinkShape? {
        if plan.scenario.topology.origin(named: targetHost) != nil { return path(from: clientHost, to: targetHost)?.shape }
        return nearestEdges(from: clientHost).first { $0.node == targetHost }?.path.shape
    }

    public func nearestEdges(from host: String) -> [(node: String, path: PathTable.Path)] {
        if let known = nearest.withLock({ $0[host] }) { return known }
        let found = table.withLock { $0.nearestEdges(from: host) }
        nearest.withLock { $0[host] = found }
        return found
    }

    /// Changes the network; returns the pairs (client, node) whose path changed, whose open
    /// connections a real network would have broken.
    @discardableResult
    public func change(_ body: (inout PathTable) -> Void) -> Set<HostPair> {
        let before = nearest.withLock { $0 }
        table.withLock { table in body(&table) }
        nearest.withLock { $0.removeAll() }
        var broken: Set<HostPair> = []
        for (client, edges) in before {
            let now = nearestEdges(from: client)
            for edge in edges where now.first(where: { $0.node == edge.node })?.path.hosts != edge.path.hosts {
                broken.insert(HostPair(client: client, node: edge.node))
            }
        }
        return broken
    }

    public func path(from a: String, to b: String) -> PathTable.Path? { table.withLock { $0.path(from: a, to: b) } }

    /// The internet's path from `host` to every host it can reach.
    public func routes(from host: String) -> [String: PathTable.Path] { table.withLock { $0.routes(from: host) } }

    public func isDown(_ host: String) -> Bool { table.withLock { $0.isDown(host) } }

    public func shape(between a: String, _ b: String) -> LinkShape? { table.withLock { $0.shape(between: a, b) } }
}

public struct HostPair: Hashable, Sendable {
    public var client: String
    public var node: String
}
