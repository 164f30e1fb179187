import EdgeModel
import EdgeNet
import Foundation
import NIOCore
import NIOPosix

/// The namespaces of the edge nodes a node-host process hosts for a runner elsewhere (another
/// pod or machine), in netns mode. Each node's namespace holds what the node serves (its host
/// addresses and, if it announces, the application pools) and sends everything else through a
/// TUN device, `pod0`, tunnelled to the node's own namespace in the runner's pod: that one sits
/// in the emulated topology, with its links, and forwards to and from here. So the topology,
/// its links and the fleet's DNS stay with the runner, and only the nodes' work moves.
final class NodePodNetwork: Sendable {
    /// The tunnel devices' MTU: room for the tunnel's 36 bytes of headers within the pod
    /// network's, which overlays often set to 1450.
    static let tunnelMTU = 1400

    let plan: FleetPlan
    let nodes: [(name: String, tunnel: UInt32)]
    let prefix: String
    let tunnel: PodTunnel

    init(plan: FleetPlan, nodes: [(name: String, tunnel: UInt32)], prefix: String = "\(NamespaceNetwork.namePrefix)\(getpid())-") {
        self.plan = plan
        self.nodes = nodes
        self.prefix = prefix
        tunnel = PodTunnel(loop: MultiThreadedEventLoopGroup.singleton.next())
    }

    var namespacePrefix: String { prefix }

    /// Makes the namespaces and devices, with the tunnel socket on `local` (the address the
    /// runner reached this process on), sending to `runner`; returns the socket's port.
    func start(local: String, runner: SocketAddress) async throws -> Int {
        let port = try await tunnel.bind(host: local)
        let namespaces = nodes.map { NetworkNamespace(prefix + $0.name) }
        try NetworkNamespace.create(namespaces)
        var jobs: [(namespace: String, lines: [String])] = []
        for (node, namespace) in zip(nodes, namespaces) {
            try namespace.sysctl("net/ipv6/ip_nonlocal_bind", "1")
            let device = try namespace.openTUN(named: "pod0")
            try Self.quiet(namespace)
            try await tunnel.attach(id: node.tunnel, descriptor: device, peer: runner)
            jobs.append((namespace.name, Self.lines(plan: plan, node: node.name)))
        }
        try await IPCommand.batches(jobs)
        return port
    }

    /// No link-local address on `pod0`, so its kernel sends nothing of its own (router
    /// solicitations, MLD reports) through the tunnel: what crosses is the fleet's traffic.
    static func quiet(_ namespace: NetworkNamespace) throws {
        try namespace.sysctl("net/ipv6/conf/pod0/addr_gen_mode", "1")
    }

    /// A hosted node's namespace: its addresses on loopback, everything else through `pod0`.
    static func lines(plan: FleetPlan, node: String) -> [String] {
        let v4 = plan.hostAddresses[node]!
        var lines = ["link set lo up", "addr add \(v4)/32 dev lo", "link set pod0 mtu \(tunnelMTU) group \(NamespaceNetwork.linkGroup) up"]
        if plan.scenario.topology.announces(node) {
            lines += ["route add local \(plan.applicationPoolIPv4) dev lo", "route add local \(plan.applicationPoolIPv6) dev lo"]
        }
        lines.append("route add default dev pod0 src \(v4)")
        if let v6 = plan.hostAddressesV6[node] {
            lines += ["addr add \(v6)/128 dev lo nodad", "route add ::/0 dev pod0 src \(v6)"]
        }
        return lines
    }

    /// Stops the tunnels, deletes the devices a namespace at a time (closing each device's
    /// descriptor first would wait for the kernel once per device), then the namespaces.
    func stop() async {
        await tunnel.stopCarrying()
        let namespaces = nodes.map { NetworkNamespace(prefix + $0.name) }
        let present = Set(NetworkNamespace.list())
        try? await IPCommand.batches(
            namespaces.filter { present.contains($0.name) }.map { ($0.name, ["link delete group \(NamespaceNetwork.linkGroup)"]) })
        await tunnel.close()
        NetworkNamespace.delete(namespaces)
    }
}
