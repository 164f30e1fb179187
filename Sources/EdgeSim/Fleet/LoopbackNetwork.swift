import EdgeDNS
import EdgeModel
import EdgeNet
import EdgePcap
import EdgeProxy
import NIOCore
import NIOPosix

/// Hosts on 127.0.0.0/8 addresses of this machine's one network stack; the fabric owns the
/// application addresses and carries each client to its nearest live node across the path's
/// emulated links.
public final class LoopbackNetwork: FleetNetwork {
    public let router: FleetRouter
    public let fabric: LoopbackFabric
    public let dnsEndpoint: Endpoint

    let plan: FleetPlan
    private let captures = FabricCaptures()

    public init(plan: FleetPlan, dnsPort: UInt16) {
        self.plan = plan
        router = FleetRouter(plan: plan)
        // The fabric's per-flow sockets last no longer than the nodes' flows they carry.
        fabric = LoopbackFabric(router: router, udpIdleTimeout: plan.scenario.limits.udpIdleTimeout.timeAmount)
        dnsEndpoint = Endpoint(IPAddress("127.53.0.53")!, dnsPort)
    }

    /// Opens each origin's host address on the fabric, which carries node connections across the
    /// node's link to the origin.
    public func start() async throws {
        for origin in plan.scenario.topology.origins { try await setOrigin(origin.name, down: false) }
    }

    /// A stopped origin's address stops accepting on the fabric too, so nodes see a refused
    /// connection, as they would from a host with nothing listening.
    public func setOrigin(_ name: String, down: Bool) async throws {
        guard let origin = plan.scenario.topology.origin(named: name), let address = plan.hostAddresses[name] else { return }
        guard !down else { return await fabric.close(address: address) }
        for range in origin.ports {
            for port in range.first...range.last {
                try await fabric.open(Endpoint(address, port), transport: origin.transport)
            }
        }
    }

    public func group(for host: String) -> any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    /// The fabric carries every connection and flow between hosts here, so it writes what it
    /// carries to or from the host (no root needed).
    public func startCapture(_ request: CaptureRequest) throws -> any HostCapture {
        let capture = try SyntheticCapture(file: request.file, filter: request.filter)
        let tap = captures.add(host: request.host, capture)
        fabric.setTap(tap)
        return FabricHostCapture(capture: capture) { [captures] in captures.remove(capture) }
    }

    public func processCommand(for host: String, _ command: [String]) -> [String] { command }

    public var namespacePrefix: String? { nil }

    public var dnsListeners: [(host: String?, endpoint: Endpoint)] { [(nil, dnsEndpoint)] }

    public func openPublic(_ endpoint: Endpoint, transport: Transport) async throws {
        try await fabric.open(endpoint, transport: transport)
    }

    public func closePublic(_ address: IPAddress) async {
        await fabric.close(address: address)
    }

    public func setNode(_ name: String, down: Bool) async {
        router.change { $0.setDown(name, down) }
        if down { fabric.sever { _, target in target == name } }
    }

    public func change(_ step: LinkStep) async throws {
        let broken = router.change { table in
            switch step.change {
            case .cut: table.cut(step.a, step.b)
            case .set(let shape): table.reshape(step.a, step.b, to: shape)
            case .restore: table.reshape(step.a, step.b, to: nil)
            }
        }
        // Anycast moving a client to another node breaks its open connections.
        fabric.sever { client, node in broken.contains(HostPair(client: client, node: node)) }
    }

    public var linkCounts: [LinkCount] {
        let counters = fabric.counters
        return [LinkCount(a: "fabric", b: "all", carried: counters.connections + counters.flows, lost: counters.datagramsLost)]
    }

    public var summary: String {
        let counters = fabric.counters
        return
            "fabric: \(counters.connections) TCP connections and \(counters.flows) UDP flows carried, \(counters.datagramsLost) datagrams lost on links, \(counters.unroutable) not routable"
    }

    public func stop() async {
        await fabric.stop()
    }
}
