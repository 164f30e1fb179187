import EdgeDNS
import EdgeModel
import EdgeNet
import EdgePcap
import EdgeRouting
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Every host in a network namespace of its own (`edgesim-<run>-<host>`), each topology link an
/// `EmulatedLink` (TUN devices, or veth pairs where TUN cannot be opened), and real routing: routes along the shortest
/// paths, every edge node holding every application address, each client's route to them
/// pointing at its nearest live edge node. The fleet's DNS answers on an anycast address at
/// every edge.
public final class NamespaceNetwork: FleetNetwork {
    public let router: FleetRouter
    public let plan: FleetPlan
    /// Names start with this; `edgesim clean` finds leftovers by it.
    public let prefix: String
    public static let namePrefix = "edgesim-"
    public let dnsEndpoint = Endpoint(FleetPlan.anycastDNS, 53)
    private let links = Mutex<[String: EmulatedLink]>([:])
    private let groups = Mutex<[String: MultiThreadedEventLoopGroup]>([:])
    /// The routes each namespace has now, by destination.
    private let applied = Mutex<[String: [String: String]]>([:])
    private let linkDevice = Mutex(LinkDevice.tun)
    private let say: @Sendable (String) -> Void
    /// Edge nodes hosted elsewhere: their namespaces here forward what is theirs through a
    /// tunnel to where they run (`NodePodNetwork`).
    let pods: NodePods?
    let remote: Set<String>

    public init(
        plan: FleetPlan, run: String = "\(getpid())", pods: NodePods? = nil, say: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.plan = plan
        self.pods = pods
        remote = pods?.remoteNodes ?? []
        router = FleetRouter(plan: plan)
        prefix = "\(Self.namePrefix)\(run)-"
        self.say = say
        var devices: [String: [String: String]] = [:]
        for (index, link) in plan.scenario.topology.links.enumerated() {
            if devices[link.a]?[link.b] == nil {
                devices[link.a, default: [:]][link.b] = "l\(index)"
                devices[link.b, default: [:]][link.a] = "l\(index)"
            }
        }
        self.devices = devices
    }

    var hosts: [String] { plan.scenario.topology.hostNames }

    public func namespace(_ host: String) -> NetworkNamespace { NetworkNamespace(prefix + host) }

    /// libpcap on every interface of the host's namespace: the packets as its kernel saw them.
    public func startCapture(_ request: CaptureRequest) throws -> any HostCapture {
        let namespace = namespace(request.host)
        return try LiveCapture(device: "any", filter: request.filter, file: request.file) { try namespace.enter() }
    }

    /// Device name of the link between two hosts (the same name at both ends).
    func device(_ a: String, _ b: String) -> String? { devices[a]?[b] }
    /// Each link's device name by its two ends, both ways round.
    private let devices: [String: [String: String]]

    public func start() async throws {
        let started = ContinuousClock.now
        var phase = started
        // Big fleets take a while: each step says how long it took.
        func done(_ what: String) {
            guard hosts.count >= 100 else { return }
            say("  \(what) in \(String(format: "%.2f", (ContinuousClock.now - phase).seconds)) s")
            phase = .now
        }
        try NetworkNamespace.create(hosts.map(namespace))
        done("\(hosts.count) namespaces made")
        // Programs run in a host (`ip netns exec`, command and postfix origins) resolve through the fleet's DNS.
        for host in hosts { try namespace(host).setResolver(FleetPlan.anycastDNS) }
        let topology = plan.scenario.topology
        let (kind, reason) = LinkDevice.available()
        linkDevice.withLock { $0 = kind }
        if let reason, !topology.links.isEmpty { say("links are \(kind) (\(reason))") }
        for (index, link) in topology.links.enumerated() {
            let made = try EmulatedLink.create(
                kind, between: (link.a, namespace(link.a)), (link.b, namespace(link.b)), device: "l\(index)", index: index,
                shape: link.shape)
            links.withLock { $0["l\(index)"] = made }
        }
        done("\(topology.links.count) links made")
        let edges = Set(plan.edgeNodes)
        var jobs: [(namespace: String, lines: [String])] = []
        for host in hosts {
            let ns = namespace(host)
            var lines = ["link set lo up"]
            if let pods, remote.contains(host) {
                let device = try ns.openTUN(named: "pod0")
                try NodePodNetwork.quiet(ns)
                try await pods.tunnel.attach(id: pods.tunnelID(host), descriptor: device)
                lines += Self.forwardingLines(plan: plan, node: host)
            } else {
                lines.append("addr add \(plan.hostAddresses[host]!)/32 dev lo")
                if let v6 = plan.hostAddressesV6[host] { lines.append("addr add \(v6)/128 dev lo nodad") }
            }
            for (index, link) in topology.links.enumerated() where link.a == host || link.b == host {
                lines.append("link set l\(index) group \(Self.linkGroup) up")
            }
            if edges.contains(host) {
                // Every edge that announces holds every application address; every edge the DNS anycast address.
                if topology.announces(host), !remote.contains(host) {
                    lines.append("route add local \(plan.applicationPoolIPv4) dev lo")
                    lines.append("route add local \(plan.applicationPoolIPv6) dev lo")
                }
                lines.append("addr add \(FleetPlan.anycastDNS)/32 dev lo")
                try ns.sysctl("net/ipv4/ip_forward", "1")
                try ns.sysctl("net/ipv6/conf/all/forwarding", "1")
                try ns.sysctl("net/ipv6/ip_nonlocal_bind", "1")
            }
            jobs.append((ns.name, lines))
        }
        try await IPCommand.batches(jobs)
        done("addresses set")
        try await applyRoutes()
        done("routes set")
        let loop = MultiThreadedEventLoopGroup.singleton
        for link in links.withLock({ Array($0.values) }) { try await link.start(on: loop.next()) }
        for host in hosts {
            let group = try namespace(host).eventLoopGroup()
            groups.withLock { $0[host] = group }
        }
        done("links and host event loops started")
        say(
            "\(hosts.count) namespaces and \(topology.links.count) links up in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s"
        )
    }

    /// The namespace of a node hosted elsewhere: what the node holds goes through `pod0`; only
    /// the DNS anycast address (the fleet's DNS answers here) stays.
    static func forwardingLines(plan: FleetPlan, node: String) -> [String] {
        var lines = [
            "link set pod0 mtu \(NodePodNetwork.tunnelMTU) group \(linkGroup) up", "route add \(plan.hostAddresses[node]!)/32 dev pod0",
        ]
        if let v6 = plan.hostAddressesV6[node] { lines.append("route add \(v6)/128 dev pod0") }
        if plan.scenario.topology.announces(node) {
            lines += ["route add \(plan.applicationPoolIPv4) dev pod0", "route add \(plan.applicationPoolIPv6) dev pod0"]
        }
        return lines
    }

    /// Routes every host should have now; only namespaces whose routes changed are updated,
    /// and routes no longer wanted are deleted.
    func applyRoutes() async throws {
        var wanted: [String: [String: String]] = [:]
        for host in hosts { wanted[host] = routes(for: host) }
        let before = applied.withLock { $0 }
        let changed = wanted.filter { before[$0.key] != $0.value }
        var jobs: [(namespace: String, lines: [String])] = []
        var removals: [(namespace: String, lines: [String])] = []
        for (host, routes) in changed {
            let old = before[host] ?? [:]
            let name = namespace(host).name
            jobs.append((name, routes.filter { old[$0.key] != $0.value }.sorted { $0.key < $1.key }.map(\.value)))
            removals.append((name, old.keys.filter { routes[$0] == nil }.sorted().map { "route del \($0)" }))
        }
        try await IPCommand.batches(jobs)
        // A route over a link that went down may be gone already.
        try? await IPCommand.batches(removals)
        applied.withLock { applied in for (host, routes) in changed { applied[host] = routes } }
    }

    /// Where every host's addresses are (the benchmarking range and the documentation prefix):
    /// one route covers the destinations a host reaches over the same link.
    public static let coveringIPv4 = try! IPPrefix.parse("198.18.0.0/15").get()
    public static let coveringIPv6 = try! IPPrefix.parse("2001:db8::/32").get()

    /// One host's routes by destination: to every other host along the internet's path (one
    /// covering route for the link most of them go over, a route of their own for the rest),
    /// and for clients (and edges that do not announce) the application and DNS addresses
    /// towards the nearest live edge node that announces.
    func routes(for host: String) -> [String: String] {
        let paths = router.routes(from: host)
        let others = hosts.filter { $0 != host }
        func device(to other: String) -> String? { paths[other].flatMap { self.device(host, $0.hosts[1]) } }
        // A node hosted elsewhere has its addresses there: its namespace here only forwards.
        let sourced = !remote.contains(host)
        var routes = Self.hostRoutes(
            source: plan.hostAddresses[host]!, to: others.map { (plan.hostAddresses[$0]!, device(to: $0)) }, covering: Self.coveringIPv4,
            sourced: sourced)
        if let v6 = plan.hostAddressesV6[host] {
            let destinations = others.compactMap { other in plan.hostAddressesV6[other].map { ($0, device(to: other)) } }
            routes.merge(Self.hostRoutes(source: v6, to: destinations, covering: Self.coveringIPv6, sourced: sourced)) { $1 }
        }
        // Edges that announce hold the application addresses; everyone else routes them to the nearest that does.
        guard !plan.scenario.topology.announces(host) else { return routes }
        let v4 = plan.hostAddresses[host]!
        let nearest = router.nearestEdges(from: host).first
        let towards = nearest.flatMap { self.device(host, $0.path.hosts[1]) }
        for prefix in ["\(plan.applicationPoolIPv4)", "\(FleetPlan.anycastDNS)/32"] {
            routes[prefix] =
                towards.map { "route replace \(prefix) dev \($0)\(sourced ? " src \(v4)" : "")" } ?? "route replace unreachable \(prefix)"
        }
        if let v6 = plan.hostAddressesV6[host] {
            let prefix = "\(plan.applicationPoolIPv6)"
            routes[prefix] =
                towards.map { "route replace \(prefix) dev \($0)\(sourced ? " src \(v6)" : "")" } ?? "route replace unreachable \(prefix)"
        }
        return routes
    }

    /// Routes from `source` to each destination (over a device, or unreachable): whichever
    /// most destinations inside `covering` share (a device, or being unreachable, as for an
    /// edge that reaches no other edge) becomes one route for all of `covering`.
    public static func hostRoutes(
        source: IPAddress, to destinations: [(IPAddress, String?)], covering: IPPrefix, sourced: Bool = true
    ) -> [String: String] {
        let bits = source.isIPv4 ? 32 : 128
        let unreachable = "unreachable"
        var uses: [String: Int] = [:]
        for (address, device) in destinations where covering.contains(address) { uses[device ?? unreachable, default: 0] += 1 }
        let common = uses.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
        func line(_ prefix: String, _ way: String) -> String {
            way == unreachable
                ? "route replace unreachable \(prefix)" : "route replace \(prefix) dev \(way)\(sourced ? " src \(source)" : "")"
        }
        var routes: [String: String] = [:]
        if let common { routes["\(covering)"] = line("\(covering)", common) }
        for (address, device) in destinations {
            let way = device ?? unreachable
            if way == common, covering.contains(address) { continue }
            routes["\(address)/\(bits)"] = line("\(address)/\(bits)", way)
        }
        return routes
    }

    public func group(for host: String) -> any EventLoopGroup {
        // Never a group of the machine's own namespace: its sockets could reach the real network.
        guard let group = groups.withLock({ $0[host] }) else { preconditionFailure("no namespace for host '\(host)'") }
        return group
    }

    public func processCommand(for host: String, _ command: [String]) -> [String] {
        [IPCommand.executable, "netns", "exec", namespace(host).name] + command
    }

    public var namespacePrefix: String? { prefix }

    /// The interface group every link device is in, so a namespace's links go in one deletion.
    static let linkGroup = 77

    public var dnsListeners: [(host: String?, endpoint: Endpoint)] { plan.edgeNodes.map { ($0, dnsEndpoint) } }

    public func openPublic(_ endpoint: Endpoint, transport: Transport) async throws {}

    /// Nothing to do: the origin's namespace answers for it.
    public func setOrigin(_ name: String, down: Bool) async throws {}

    public func closePublic(_ address: IPAddress) async {}

    public func setNode(_ name: String, down: Bool) async {
        router.change { $0.setDown(name, down) }
        do { try await applyRoutes() } catch { say("rerouting after \(name) went \(down ? "down" : "up") failed: \(error)") }
    }

    public func change(_ step: LinkStep) async throws {
        guard let device = device(step.a, step.b), let link = links.withLock({ $0[device] }) else { return }
        switch step.change {
        case .cut: link.cut()
        case .set(let shape): link.set(shape)
        case .restore: link.restore(plan.scenario.topology.link(between: step.a, step.b)?.shape ?? LinkShape())
        }
        router.change { table in
            switch step.change {
            case .cut: table.cut(step.a, step.b)
            case .set(let shape): table.reshape(step.a, step.b, to: shape)
            case .restore: table.reshape(step.a, step.b, to: nil)
            }
        }
        try await applyRoutes()
    }

    public var linkCounts: [LinkCount] {
        links.withLock { Array($0.values) }.map { LinkCount(a: $0.a, b: $0.b, carried: $0.counters.forwarded, lost: $0.counters.lost) }
    }

    public var summary: String {
        let all = links.withLock { Array($0.values) }
        let forwarded = all.map(\.counters.forwarded).reduce(0, +)
        let lost = all.map(\.counters.lost).reduce(0, +)
        var summary =
            "links: \(forwarded) packets carried, \(lost) lost (loss, cuts, full queues) over \(all.count) links (\(linkDevice.withLock { $0 }))"
        if let pods {
            let tunnel = pods.tunnel.counters
            summary +=
                "\nnode hosts: \(pods.pods.count) elsewhere (\(pods.pods.map(\.address).joined(separator: ", "))); tunnels to their \(remote.count) nodes: \(tunnel.sent) packets sent, \(tunnel.received) received, \(tunnel.dropped) refused, \(tunnel.beforePeer) read before their host connected"
        }
        return summary
    }

    public func stop() async {
        var phase = ContinuousClock.now
        func done(_ what: String) {
            guard hosts.count >= 100 else { return }
            say("  \(what) in \(String(format: "%.2f", (ContinuousClock.now - phase).seconds)) s")
            phase = .now
        }
        // The links' channels first: a device deleted under a channel that still watches it can
        // raise a poll event SwiftNIO takes for a broken invariant, and stops the process.
        await withTaskGroup(of: Void.self) { tasks in
            for link in links.withLock({ Array($0.values) }) { tasks.addTask { await link.stopCarrying() } }
            if let pods { tasks.addTask { await pods.tunnel.stopCarrying() } }
        }
        // One deletion of every link device in a namespace at a time: the kernel then waits once
        // for the whole group, where closing each device's descriptor waits once per device
        // (20 ms each, nearly a minute for a thousand-node fleet).
        try? await IPCommand.batches(hosts.map { (namespace($0).name, ["link delete group \(Self.linkGroup)"]) })
        done("link devices deleted")
        await withTaskGroup(of: Void.self) { tasks in
            for link in links.withLock({ Array($0.values) }) { tasks.addTask { await link.close() } }
            if let pods { tasks.addTask { await pods.close() } }
            for group in groups.withLock({ Array($0.values) }) { tasks.addTask { try? await group.shutdownGracefully() } }
        }
        done("links and host event loops stopped")
        NetworkNamespace.delete(hosts.map(namespace))
        for host in hosts { namespace(host).removeResolver() }
        done("\(hosts.count) namespaces deleted")
    }
}
