import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Synchronization

/// A scenario's topology running on this machine's loopback network: one `edgesim node`
/// process per edge node on its own 127.x addresses, the origins on theirs, the fleet's DNS
/// responder, and the fabric that owns the application addresses and carries each client's
/// traffic to its nearest live node across the emulated links.
public final class LoopbackFleet: AddressServing {
    public struct Options: Sendable {
        /// The edgesim executable the node processes run.
        public var executable: String
        public var scenarioPath: String
        public var dns: Endpoint
        /// Node processes started at once.
        public var startConcurrency: Int
        public var say: @Sendable (String) -> Void
        public var nodeLog: @Sendable (String, String) -> Void

        public init(
            executable: String, scenarioPath: String, dns: Endpoint, startConcurrency: Int = 8,
            say: @escaping @Sendable (String) -> Void, nodeLog: @escaping @Sendable (String, String) -> Void
        ) {
            self.executable = executable
            self.scenarioPath = scenarioPath
            self.dns = dns
            self.startConcurrency = startConcurrency
            self.say = say
            self.nodeLog = nodeLog
        }
    }

    /// A node's event, as the checks need it.
    public struct NodeEvent: Sendable, Hashable {
        public var kind: String
        public var app: String
        public var node: String
        public var client: IPAddress
        public var status: Int
        public var time: Double
    }

    public struct NodeExit: Sendable, Hashable {
        public var node: String
        public var status: Int32
        public var expected: Bool
        public var time: Double
    }

    public let plan: FleetPlan
    public let options: Options
    public let router: FleetRouter
    public let fabric: LoopbackFabric
    public let nodes: [String: NodeProcess]
    public let origins: [String: OriginHost]
    public let store = ZoneStore()
    public let dnsServer: DNSServer
    public let book: AddressBook
    public let zones: EdgeZones
    private let rotatorBox = Mutex<AddressRotator?>(nil)
    private let serving = Mutex<[String: Set<IPAddress>]>([:])
    /// Set while the fleet shuts down, when node exits are what was asked for.
    private let tearingDown = Locked(false)
    private let recorded = Recorder<NodeEvent>()
    private let exits = Recorder<NodeExit>()
    private let dnsBound: Mutex<Endpoint>

    public init(plan: FleetPlan, options: Options, ttl: UInt32) {
        self.plan = plan
        self.options = options
        router = FleetRouter(plan: plan)
        fabric = LoopbackFabric(router: router)
        dnsServer = DNSServer(zones: store, udpSockets: 1)
        dnsBound = Mutex(options.dns)
        book = AddressBook(ipv4: plan.applicationPoolIPv4, ipv6: plan.applicationPoolIPv6)
        zones = EdgeZones(ttl: ttl, pools: (plan.applicationPoolIPv4, plan.applicationPoolIPv6))
        var origins: [String: OriginHost] = [:]
        for spec in plan.scenario.topology.origins { origins[spec.name] = OriginHost(spec: spec, address: plan.hostAddresses[spec.name]!) }
        self.origins = origins
        let recorded = self.recorded
        let exits = self.exits
        let tearingDown = self.tearingDown
        let router = self.router
        let fabric = self.fabric
        var nodes: [String: NodeProcess] = [:]
        for name in plan.edgeNodes {
            let command = [
                options.executable, "node", "--scenario", options.scenarioPath, "--as", name, "--mode", plan.mode.rawValue, "--control",
            ]
            nodes[name] = NodeProcess(
                name: name, command: command,
                onOutput: { node, output in
                    guard let kind = output.event, let app = output.app, let client = output.clientIP.flatMap({ IPAddress($0) }) else {
                        return
                    }
                    let event = NodeEvent(
                        kind: kind, app: app, node: node, client: client, status: output.status ?? 0, time: output.time ?? 0)
                    recorded.append(event)
                },
                onLog: options.nodeLog,
                onExit: { node, status, expected in
                    guard !tearingDown.value else { return }
                    exits.append(NodeExit(node: node, status: status, expected: expected, time: Date().timeIntervalSince1970))
                    router.change { $0.setDown(node, true) }
                    fabric.sever { _, target in target == node }
                    if !expected { options.say("node \(node) exited unexpectedly (status \(status))") }
                })
        }
        self.nodes = nodes
    }

    /// Set once `start` has assigned the first addresses.
    public var rotator: AddressRotator { rotatorBox.withLock { $0! } }
    public var rotatorIfStarted: AddressRotator? { rotatorBox.withLock { $0 } }
    /// Where the fleet's DNS answers.
    public var dnsEndpoint: Endpoint { dnsBound.withLock { $0 } }

    public var events: [NodeEvent] { recorded.all }
    public var nodeExits: [NodeExit] { exits.all }

    /// Brings everything up: origins, DNS, node processes (a few at a time), then the
    /// applications' first addresses on every node and the fabric, then publishes the zones.
    public func start(drain: Duration) async throws {
        for origin in origins.values { try await origin.start() }
        let bound = try await dnsServer.start(at: options.dns)
        dnsBound.withLock { $0 = bound }
        let names = plan.edgeNodes
        var index = 0
        while index < names.count {
            let batch = names[index..<min(index + options.startConcurrency, names.count)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in batch { group.addTask { try await self.nodes[name]!.start() } }
                try await group.waitForAll()
            }
            index += batch.count
            options.say("started \(index)/\(names.count) edge nodes")
        }
        let rotator = AddressRotator(applications: plan.applications, book: book, zones: zones, store: store, servers: [self], drain: drain)
        rotatorBox.withLock { $0 = rotator }
        try await rotator.start()
    }

    /// Every node that is up serves the addresses through its own copies, then the fabric
    /// opens the public ones.
    public func startServing(_ appID: String, on addresses: [IPAddress]) async throws {
        guard let app = plan.applications.first(where: { $0.id == appID }) else { return }
        serving.withLock { $0[appID, default: []].formUnion(addresses) }
        for (name, node) in nodes where !router.isDown(name) {
            try await node.startServing(appID, on: addresses.map { plan.nodeAddress(of: $0, on: name) })
        }
        for address in addresses {
            for port in app.edge.ports.first...app.edge.ports.last {
                try await fabric.open(Endpoint(address, port), transport: app.edge.transport)
            }
        }
    }

    public func stopServing(_ appID: String, address: IPAddress) async {
        await fabric.close(address: address)
        serving.withLock { _ = $0[appID]?.remove(address) }
        for (name, node) in nodes where !router.isDown(name) {
            await node.stopServing(appID, address: plan.nodeAddress(of: address, on: name))
        }
    }

    /// Stops a node (gracefully, or killed as a crash); its clients move to the next nearest.
    public func stopNode(_ name: String, kill: Bool) async {
        guard let node = nodes[name] else { return }
        if kill { node.kill() } else { await node.stop() }
        router.change { $0.setDown(name, true) }
        fabric.sever { _, target in target == name }
    }

    /// Starts a node again with every address the fleet serves now; then it takes clients back.
    public func startNode(_ name: String) async throws {
        guard let node = nodes[name], !node.isRunning else { return }
        try await node.start()
        for (app, addresses) in serving.withLock({ $0 }) {
            try await node.startServing(app, on: addresses.map { plan.nodeAddress(of: $0, on: name) })
        }
        router.change { $0.setDown(name, false) }
    }

    /// Cuts, reshapes or restores a link. Connections whose path changed are broken, as they
    /// would be when anycast moves a client to another node.
    public func change(_ step: LinkStep) {
        let broken = router.change { table in
            switch step.change {
            case .cut: table.cut(step.a, step.b)
            case .set(let shape): table.reshape(step.a, step.b, to: shape)
            case .restore: table.reshape(step.a, step.b, to: nil)
            }
        }
        fabric.sever { client, node in broken.contains(HostPair(client: client, node: node)) }
    }

    public func stopOrigin(_ name: String) async { await origins[name]?.stop() }
    public func startOrigin(_ name: String) async throws { try await origins[name]?.start() }

    /// Stops everything it started.
    public func stop() async {
        tearingDown.set(true)
        await withTaskGroup(of: Void.self) { group in
            for node in nodes.values { group.addTask { await node.stop() } }
        }
        await fabric.stop()
        await dnsServer.stop()
        for origin in origins.values { await origin.stop() }
    }

    public var nodePIDs: [Int32] { nodes.values.compactMap(\.pid) }
}
