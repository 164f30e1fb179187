import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import Synchronization

/// A scenario's topology running on this machine: edge nodes in `edgesim node-host` processes,
/// the origins on their hosts, the fleet's DNS responder, application addresses assigned and
/// rotated, all on a `FleetNetwork` (loopback behind the fabric, or network namespaces).
public final class Fleet: AddressServing {
    public struct Options: Sendable {
        /// Where node processes read what they serve at start.
        public enum NodeSource: Sendable, Hashable {
            /// A scenario file (`edgesim run`).
            case scenario(String)
            /// A topology and, if any, an applications file (`edgesim up`); applications added
            /// later are given over the control channel.
            case topology(String, applications: String?)
        }

        /// The edgesim executable the node processes run.
        public var executable: String
        public var nodeSource: NodeSource
        /// Node processes started at once.
        public var startConcurrency: Int
        public var say: @Sendable (String) -> Void
        public var nodeLog: @Sendable (String, String) -> Void
        /// How often each node is pinged over its control channel. Default 1 s.
        public var livenessInterval: Duration = .seconds(1)
        /// A node that does not answer a ping within this is reported down. Default 3 s.
        public var livenessTimeout: Duration = .seconds(3)
        /// Where the fleet's CA and the certificates it issues go, when anything serves TLS; kept
        /// after the fleet stops. nil: a scratch folder removed at the end.
        public var certificateFolder: String?
        /// Applications may be added and changed while the fleet runs (`define`), so a CA is
        /// made even when nothing serves TLS at start. Default false.
        public var applicationsChange = false
        /// Where the fleet counts what it sees (swift-metrics); nil: not counted.
        public var metrics: FleetMetrics?
        /// Edge nodes a node-host process holds; nil: `automaticNodesPerProcess`.
        public var nodesPerProcess: Int?
        /// Node-host processes listening elsewhere (`--node-hosts`), which then host every
        /// edge node instead of processes started here; the network must be made with the same.
        public var nodePods: NodePods?

        public init(
            executable: String, scenarioPath: String, startConcurrency: Int = 8,
            say: @escaping @Sendable (String) -> Void, nodeLog: @escaping @Sendable (String, String) -> Void
        ) {
            self.executable = executable
            self.nodeSource = .scenario(scenarioPath)
            self.startConcurrency = startConcurrency
            self.say = say
            self.nodeLog = nodeLog
        }
    }

    /// A node's event, as nodes write them and the checks, metrics and API read them.
    public typealias NodeEvent = ProxyEvent

    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A node that stopped answering its control channel (frozen, stalled), and when it came back.
    public struct NodeDown: Sendable, Hashable {
        public var node: String
        /// Seconds since the epoch.
        public var time: Double
        public var back: Double?
    }

    public struct NodeExit: Sendable, Hashable {
        public var node: String
        public var status: Int32
        public var expected: Bool
        public var time: Double
    }

    public let plan: FleetPlan
    public let options: Options
    public let network: any FleetNetwork
    public var router: FleetRouter { network.router }
    public let nodes: [String: HostedNode]
    /// The node-host processes, each holding some of the nodes.
    public let hosts: [NodeHostProcess]
    private let originHosts = Mutex<[String: OriginHost]>([:])
    /// The origins, once `start` has made them on their hosts.
    public var origins: [String: OriginHost] { originHosts.withLock { $0 } }
    public let store = ZoneStore()
    private let dnsServers = Mutex<[DNSServer]>([])
    public let book: AddressBook
    public let zones: EdgeZones
    private let rotatorBox = Mutex<AddressRotator?>(nil)
    private let serving = Mutex<[String: Set<IPAddress>]>([:])
    /// Set while the fleet shuts down, when node exits are what was asked for.
    private let tearingDown = Locked(false)
    private let lastLines = LastLines()
    private let recorded = Recorder<NodeEvent>()
    private let exits = Recorder<NodeExit>()
    private let downs = Mutex<[NodeDown]>([])
    /// The folder of the fleet's CA and issued certificates; nil when nothing serves TLS.
    public let certificates: URL?
    /// The CA file clients trust, once the fleet has started; nil when nothing serves TLS.
    public var certificateAuthorityFile: String? { certificates?.appendingPathComponent(LocalCA.certificateFile).path }

    public init(plan: FleetPlan, network: any FleetNetwork, options: Options, ttl: UInt32) {
        self.plan = plan
        self.options = options
        self.network = network
        book = AddressBook(ipv4: plan.applicationPoolIPv4, ipv6: plan.applicationPoolIPv6)
        var zones = EdgeZones(ttl: ttl, pools: (plan.applicationPoolIPv4, plan.applicationPoolIPv6), hostPools: plan.hostPools)
        zones.hosts = plan.namedHosts(in: zones)
        for origin in plan.scenario.originNames {
            guard let name = DNSName(origin.name) else { continue }
            zones.originNames.set(name, addresses: plan.originAddresses(origin.origins), ttl: UInt32(origin.ttl.components.seconds))
        }
        self.zones = zones
        if FleetCertificates.needed(plan) || options.applicationsChange {
            certificates =
                options.certificateFolder.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent(
                    "\(FleetCertificates.folderPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        } else {
            certificates = nil
        }
        let certificateArguments = certificates.map { ["--certificates", $0.path] } ?? []
        // Applications that find their origin by name ask the fleet's DNS.
        let resolver =
            options.applicationsChange || plan.applications.contains { if case .dns = $0.origin { return true } else { return false } }
            ? ["--resolver", network.dnsEndpoint.description] : []
        let recorded = self.recorded
        let exits = self.exits
        let tearingDown = self.tearingDown
        let lastLines = self.lastLines
        let network = self.network
        var nodes: [String: HostedNode] = [:]
        var hosts: [NodeHostProcess] = []
        let source: [String]
        switch options.nodeSource {
        case .scenario(let path): source = ["--scenario", path]
        case .topology(let path, let apps): source = ["--topology", path] + (apps.map { ["--apps", $0] } ?? [])
        }
        let perProcess = max(1, options.nodesPerProcess ?? Self.automaticNodesPerProcess(plan.edgeNodes.count))
        // One node to a process gets a loop per core, as a machine of its own; packed nodes one each.
        let threads = perProcess == 1 ? System.coreCount : 1
        let namespaces = network.namespacePrefix.map { ["--namespace-prefix", $0] } ?? []
        let groups: [[String]] =
            options.nodePods.map { $0.pods.map(\.nodes) }
            ?? stride(from: 0, to: plan.edgeNodes.count, by: perProcess).map {
                Array(plan.edgeNodes[$0..<min($0 + perProcess, plan.edgeNodes.count)])
            }
        for (index, members) in groups.enumerated() {
            let command =
                [options.executable, "node-host"] + source + ["--mode", plan.mode.rawValue, "--nodes", members.joined(separator: ",")]
                + ["--threads-per-node", "\(threads)"] + namespaces + resolver + certificateArguments
            let host = NodeHostProcess(
                name: "node-host-\(index + 1)", nodes: members, command: command,
                onEvent: { event in
                    recorded.append(event)
                    options.metrics?.record(event)
                },
                onLog: { node, line in
                    // The last lines each node wrote, to show when it dies.
                    lastLines.withLock { lines in
                        lines[node, default: []].append(line)
                        if lines[node]!.count > 10 { lines[node]!.removeFirst() }
                    }
                    options.nodeLog(node, line)
                },
                onExit: { node, status, expected in
                    guard !tearingDown.value else { return }
                    exits.append(NodeExit(node: node, status: status, expected: expected, time: Date().timeIntervalSince1970))
                    Task { await network.setNode(node, down: true) }
                    if !expected {
                        let said = lastLines.withLock { $0[node] ?? [] }.map { "  [\(node)] \($0)" }
                        options.say(
                            (["node \(node) exited unexpectedly (status \(status)); its last lines:"] + said).joined(separator: "\n"))
                    }
                }, pod: options.nodePods.map { ($0, $0.pods[index]) }, resolver: resolver.last, certificateFolder: certificates?.path)
            hosts.append(host)
            for name in members { nodes[name] = HostedNode(name: name, host: host) }
        }
        self.hosts = hosts
        self.nodes = nodes
    }

    /// One node to a process (a machine of its own each) for fleets up to 32 nodes; beyond,
    /// 64 to a process, so a thousand nodes need sixteen.
    public static func automaticNodesPerProcess(_ nodes: Int) -> Int { nodes <= 32 ? 1 : 64 }

    /// Set once `start` has assigned the first addresses.
    public var rotator: AddressRotator { rotatorBox.withLock { $0! } }
    public var rotatorIfStarted: AddressRotator? { rotatorBox.withLock { $0 } }
    /// Where clients ask the fleet's DNS.
    public var dnsEndpoint: Endpoint { network.dnsEndpoint }

    /// Where a host's own sockets are made.
    public func group(for host: String) -> any EventLoopGroup { network.group(for: host) }

    /// The network a plan's mode runs on.
    public static func network(
        for plan: FleetPlan, dnsPort: UInt16, pods: NodePods? = nil, say: @escaping @Sendable (String) -> Void
    ) -> any FleetNetwork {
        switch plan.mode {
        case .netns: return NamespaceNetwork(plan: plan, pods: pods, say: say)
        case .loopback: return LoopbackNetwork(plan: plan, dnsPort: dnsPort)
        }
    }

    /// The applications as nodes serve them now: the plan's, then as `define` and `remove` change them.
    public var applications: [Application] { rotatorIfStarted?.applications ?? plan.applications }

    /// Adds an application, or changes one with the same id (`app` as a file or API gives it:
    /// origins may name topology hosts). Every node learns the definition first; then the
    /// application gets its addresses (a change moves to new ones make-before-break) and DNS
    /// publishes them.
    public func define(_ app: Application) async throws {
        let served: Application
        do {
            served = try plan.served(app)
        } catch {
            throw StartFailure(description: error.description)
        }
        if served.tls != .off, let certificates {
            do {
                try FleetCertificates.issue(served, zones: zones, into: certificates)
            } catch {
                throw StartFailure(description: "cannot issue a certificate for \(app.id): \(error)")
            }
        }
        let exists = applications.contains { $0.id == app.id }
        for (name, node) in nodes.sorted(by: { $0.key < $1.key }) {
            do {
                try await node.define(served)
            } catch  where !node.isRunning || router.isDown(name) {
                // Given again when it starts or answers again.
            }
        }
        if exists {
            try await rotator.change(served)
        } else {
            try await rotator.add(served)
        }
    }

    /// Takes an application out of DNS, stops serving it everywhere and frees its addresses.
    public func remove(_ appID: String) async {
        await rotator.remove(appID)
        for node in nodes.values { await node.remove(appID) }
    }

    /// What the fleet's DNS responders counted, added up.
    public var dnsCounters: DNSServer.Counters {
        dnsServers.withLock { $0 }.map(\.counters).reduce(into: DNSServer.Counters()) { total, counters in
            total.queries += counters.queries
            total.formatErrors += counters.formatErrors
            total.dropped += counters.dropped
            total.truncated += counters.truncated
            total.rateLimited += counters.rateLimited
            total.slipped += counters.slipped
            total.answered.merge(counters.answered, uniquingKeysWith: +)
        }
    }

    public var events: [NodeEvent] { recorded.all }
    public var nodeExits: [NodeExit] { exits.all }

    /// Waits, at most `limit`, until every TCP connection a live node reported opening has been
    /// reported ended too: a client that is done may see its last bytes a moment before the
    /// node has closed both sides and said so.
    public func settleEvents(within limit: Duration = .seconds(2)) async {
        let tcp = Set(applications.filter { $0.edge.transport == .tcp }.map(\.id))
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let gone = Set(nodeExits.map(\.node)).union(nodeDowns.map(\.node))
            var open: [String: Int] = [:]
            for event in events where tcp.contains(event.app) && !gone.contains(event.node) {
                switch event.event {
                case .connect: open[event.node, default: 0] += 1
                case .disconnect: open[event.node, default: 0] -= 1
                default: break
                }
            }
            if open.values.allSatisfy({ $0 <= 0 }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
    public var nodeDowns: [NodeDown] { downs.withLock { $0 } }

    /// Pings a started node; one that stops answering is reported down and withdrawn from
    /// anycast, and when it answers again it catches up with the addresses it should serve
    /// before it takes clients back.
    private func watch(_ name: String) {
        nodes[name]?.watchLiveness(interval: options.livenessInterval, timeout: options.livenessTimeout) { [self] responsive in
            Task { await self.liveness(name, responsive: responsive) }
        }
    }

    private func liveness(_ name: String, responsive: Bool) async {
        guard !tearingDown.value, let node = nodes[name] else { return }
        let now = Date().timeIntervalSince1970
        guard responsive else {
            downs.withLock { $0.append(NodeDown(node: name, time: now)) }
            options.say(
                "node \(name) stopped answering (no reply within \(options.livenessTimeout)): reported down, withdrawn from anycast")
            await network.setNode(name, down: true)
            return
        }
        options.say("node \(name) answers again: catching up with the addresses it serves, then back in anycast")
        let current = serving.withLock { $0 }
        if plan.scenario.topology.announces(name) {
            for app in applications {
                let addresses = (current[app.id] ?? []).map { plan.nodeAddress(of: $0, on: name) }
                do {
                    try await node.reconcile(app.id, to: addresses)
                } catch {
                    options.say("node \(name): \(error)")
                }
            }
        }
        downs.withLock { downs in
            if let index = downs.lastIndex(where: { $0.node == name && $0.back == nil }) { downs[index].back = now }
        }
        await network.setNode(name, down: false)
    }

    /// Stalls or resumes a node, as a machine that stops responding.
    public func freezeNode(_ name: String, _ frozen: Bool) async {
        await nodes[name]?.freeze(frozen)
    }

    /// Brings everything up: origins, DNS, node processes (a few at a time), then the
    /// applications' first addresses on every node and the fabric, then publishes the zones.
    public func start(drain: Duration) async throws {
        if let certificates {
            do {
                try FleetCertificates.issue(plan, zones: zones, into: certificates)
            } catch {
                throw StartFailure(description: "cannot issue the fleet's certificates in \(certificates.path): \(error)")
            }
        }
        try await network.start()
        for spec in plan.scenario.topology.origins {
            let origin = OriginHost(
                spec: spec, address: plan.originListenAddress(spec.name)!, group: network.group(for: spec.name),
                hostname: plan.hostName(spec.name, in: zones).text, dns: network.dnsEndpoint,
                tls: certificates.flatMap { FleetCertificates.originFiles(spec, in: $0.path) },
                wrap: { [network] in network.processCommand(for: spec.name, $0) })
            originHosts.withLock { $0[spec.name] = origin }
        }
        for (name, origin) in origins {
            do {
                try await origin.start()
            } catch {
                throw StartFailure(description: "origin \(name) cannot listen on \(origin.address): \(error)")
            }
        }
        for listener in network.dnsListeners {
            let group = listener.host.map { network.group(for: $0) } ?? network.group(for: "")
            let server = DNSServer(
                zones: store, group: group, udpSockets: 1, rateLimit: .init(rate: plan.scenario.limits.dnsRate))
            do {
                _ = try await server.start(at: listener.endpoint)
            } catch {
                throw StartFailure(
                    description: "DNS responder cannot listen on \(listener.endpoint)\(listener.host.map { " at \($0)" } ?? ""): \(error)")
            }
            dnsServers.withLock { $0.append(server) }
        }
        let names = plan.edgeNodes
        var index = 0
        while index < names.count {
            let batch = names[index..<min(index + options.startConcurrency, names.count)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in batch {
                    group.addTask {
                        try await self.nodes[name]!.start()
                        self.watch(name)
                    }
                }
                try await group.waitForAll()
            }
            let before = index
            index += batch.count
            // Every batch for a small fleet; every tenth of the way for a big one.
            if names.count <= 80 || index == names.count || before * 10 / names.count != index * 10 / names.count {
                options.say("started \(index)/\(names.count) edge nodes")
            }
        }
        let rotator = AddressRotator(applications: plan.applications, book: book, zones: zones, store: store, servers: [self], drain: drain)
        rotatorBox.withLock { $0 = rotator }
        try await rotator.start()
    }

    /// Every node that is up serves the addresses through its own copies, then the fabric
    /// opens the public ones.
    public func startServing(_ appID: String, on addresses: [IPAddress]) async throws {
        guard let app = applications.first(where: { $0.id == appID }) else { return }
        serving.withLock { $0[appID, default: []].formUnion(addresses) }
        for (name, node) in nodes where !router.isDown(name) && plan.scenario.topology.announces(name) {
            do {
                try await node.startServing(appID, on: addresses.map { plan.nodeAddress(of: $0, on: name) })
            } catch  where "\(error)".contains("no answer within") {
                // Frozen before liveness noticed: it catches up when it answers again.
                options.say("node \(name) did not answer while the fleet served \(appID): it catches up when it answers again")
            }
        }
        for address in addresses {
            for port in app.edge.ports.first...app.edge.ports.last {
                try await network.openPublic(Endpoint(address, port), transport: app.edge.transport)
            }
        }
    }

    public func stopServing(_ appID: String, address: IPAddress) async {
        await network.closePublic(address)
        serving.withLock { _ = $0[appID]?.remove(address) }
        for (name, node) in nodes where !router.isDown(name) && plan.scenario.topology.announces(name) {
            await node.stopServing(appID, address: plan.nodeAddress(of: address, on: name))
        }
    }

    /// Stops a node (gracefully, or killed as a crash); its clients move to the next nearest.
    public func stopNode(_ name: String, kill: Bool) async {
        guard let node = nodes[name] else { return }
        if kill {
            await node.kill()
            await network.setNode(name, down: true)
        } else {
            // Taken out of service: withdrawn from anycast first, then stopped once its connections end.
            await network.setNode(name, down: true)
            await node.stop(grace: .seconds(8))
        }
    }

    /// Starts a node again with every address the fleet serves now; then it takes clients back.
    public func startNode(_ name: String) async throws {
        guard let node = nodes[name], !node.isRunning else { return }
        try await node.start()
        watch(name)
        for (app, addresses) in serving.withLock({ $0 }) where plan.scenario.topology.announces(name) {
            try await node.startServing(app, on: addresses.map { plan.nodeAddress(of: $0, on: name) })
        }
        await network.setNode(name, down: false)
    }

    /// Cuts, reshapes or restores a link; anycast and routes follow.
    public func change(_ step: LinkStep) async throws {
        try await network.change(step)
    }

    public func stopOrigin(_ name: String) async {
        await origins[name]?.stop()
        try? await network.setOrigin(name, down: true)
    }

    /// Starts a stopped origin; false when it was running already.
    @discardableResult
    public func startOrigin(_ name: String) async throws -> Bool {
        guard try await origins[name]?.start() == true else { return false }
        try await network.setOrigin(name, down: false)
        return true
    }

    /// Points an origin name at other origins and publishes the zones at once.
    public func setOriginName(_ step: OriginNameStep) {
        guard let name = DNSName(step.name) else { return }
        zones.originNames.set(name, addresses: plan.originAddresses(step.origins))
        if let rotator = rotatorIfStarted {
            rotator.publish()
        } else {
            store.replace(with: zones.build(plan.applications, book: book))
        }
    }

    /// Makes a running built-in TCP origin misbehave (or behave again).
    public func setOriginFault(_ name: String, _ fault: TCPOrigin.Fault) {
        origins[name]?.setFault(fault)
    }

    /// One line for the report on what smart routing cost and carried, from every running node;
    /// nil when no node does smart routing.
    public func smartRoutingSummary() async -> String? {
        var reports: [SmartRoutingReport] = []
        for (name, node) in nodes.sorted(by: { $0.key < $1.key }) where node.isRunning && plan.smartRouting(for: name) != nil {
            if let report = await node.smartRouting() { reports.append(report) }
        }
        guard let interval = reports.first?.probeIntervalSeconds else { return nil }
        let sent = reports.map(\.counters.probesSent).reduce(0, +)
        let lost = reports.map(\.counters.probesLost).reduce(0, +)
        let bytes = reports.map(\.counters.probeBytes).reduce(0, +)
        let relayed = reports.map(\.counters.relayedIn).reduce(0, +)
        let refused = reports.map(\.counters.relayRefused).reduce(0, +)
        return
            "smart routing: \(reports.count) edges probed every \(interval) s: \(sent) probes (\(bytes / 1024) KiB with the tables they carried), \(lost) unanswered; relays took \(relayed) connections and flows from other edges, refused \(refused)"
    }

    /// Stops everything it started.
    public func stop() async {
        tearingDown.set(true)
        var phase = ContinuousClock.now
        // Big fleets take a while: each step says how long it took.
        func done(_ what: String) {
            guard nodes.count >= 100 else { return }
            options.say("  \(what) in \(String(format: "%.2f", (ContinuousClock.now - phase).seconds)) s")
            phase = .now
        }
        await withTaskGroup(of: Void.self) { group in
            for host in hosts { group.addTask { await host.stop() } }
        }
        done("\(nodes.count) edge nodes stopped")
        await withTaskGroup(of: Void.self) { group in
            for server in dnsServers.withLock({ $0 }) { group.addTask { await server.stop() } }
            for origin in origins.values { group.addTask { await origin.stop() } }
        }
        done("DNS responders and origins stopped")
        await network.stop()
        done("network taken down")
        if let certificates, options.certificateFolder == nil { try? FileManager.default.removeItem(at: certificates) }
    }

    public var nodePIDs: [Int32] { hosts.compactMap(\.pid) }

    /// The name a node's process goes by in reports: the node's own when it has the process to
    /// itself, else its node-host's (`node-host-3`).
    public func processName(of node: String) -> String {
        guard let host = nodes[node]?.host, host.nodes.count > 1 else { return node }
        return host.name
    }
}
