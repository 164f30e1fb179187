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
    private let applied = Mutex<[String: [String]]>([:])
    private let linkDevice = Mutex(LinkDevice.tun)
    private let say: @Sendable (String) -> Void

    public init(plan: FleetPlan, run: String = "\(getpid())", say: @escaping @Sendable (String) -> Void = { _ in }) {
        self.plan = plan
        router = FleetRouter(plan: plan)
        prefix = "\(Self.namePrefix)\(run)-"
        self.say = say
    }

    var hosts: [String] { plan.scenario.topology.hostNames }

    public func namespace(_ host: String) -> NetworkNamespace { NetworkNamespace(prefix + host) }

    /// libpcap on every interface of the host's namespace: the packets as its kernel saw them.
    public func startCapture(_ request: CaptureRequest) throws -> any HostCapture {
        let namespace = namespace(request.host)
        return try LiveCapture(device: "any", filter: request.filter, file: request.file) { try namespace.enter() }
    }

    /// Device name of the link between two hosts (the same name at both ends).
    func device(_ a: String, _ b: String) -> String? {
        plan.scenario.topology.links.firstIndex { ($0.a == a && $0.b == b) || ($0.a == b && $0.b == a) }.map { "l\($0)" }
    }

    public func start() async throws {
        let started = ContinuousClock.now
        try NetworkNamespace.create(hosts.map(namespace))
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
        let edges = Set(plan.edgeNodes)
        try await forEachHost { host in
            let ns = self.namespace(host)
            var lines = ["link set lo up", "addr add \(self.plan.hostAddresses[host]!)/32 dev lo"]
            if let v6 = self.plan.hostAddressesV6[host] { lines.append("addr add \(v6)/128 dev lo nodad") }
            for (index, link) in topology.links.enumerated() where link.a == host || link.b == host {
                lines.append("link set l\(index) up")
            }
            if edges.contains(host) {
                // Every edge that announces holds every application address; every edge the DNS anycast address.
                if topology.announces(host) {
                    lines.append("route add local \(self.plan.applicationPoolIPv4) dev lo")
                    lines.append("route add local \(self.plan.applicationPoolIPv6) dev lo")
                }
                lines.append("addr add \(FleetPlan.anycastDNS)/32 dev lo")
                try ns.sysctl("net/ipv4/ip_forward", "1")
                try ns.sysctl("net/ipv6/conf/all/forwarding", "1")
                try ns.sysctl("net/ipv6/ip_nonlocal_bind", "1")
            }
            try IPCommand.batch(lines, namespace: ns.name)
        }
        try await applyRoutes()
        let loop = MultiThreadedEventLoopGroup.singleton
        for link in links.withLock({ Array($0.values) }) { try await link.start(on: loop.next()) }
        for host in hosts {
            let group = try namespace(host).eventLoopGroup()
            groups.withLock { $0[host] = group }
        }
        say(
            "\(hosts.count) namespaces and \(topology.links.count) links up in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s"
        )
    }

    /// Runs `body` for every host, a few at a time.
    private func forEachHost(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let all = hosts
        var index = 0
        while index < all.count {
            let batch = all[index..<min(index + 8, all.count)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for host in batch { group.addTask { try await body(host) } }
                try await group.waitForAll()
            }
            index += batch.count
        }
    }

    /// Routes every host should have now; only namespaces whose routes changed are updated.
    func applyRoutes() async throws {
        var wanted: [String: [String]] = [:]
        for host in hosts { wanted[host] = routes(for: host) }
        let before = applied.withLock { $0 }
        let changed = wanted.filter { before[$0.key] != $0.value }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (host, lines) in changed {
                let name = namespace(host).name
                group.addTask { try IPCommand.batch(lines, namespace: name) }
            }
            try await group.waitForAll()
        }
        applied.withLock { applied in for (host, lines) in changed { applied[host] = lines } }
    }

    /// One host's routes: to every other host along the internet's path, and for clients (and
    /// edges that do not announce) the application and DNS addresses towards the nearest live
    /// edge node that announces.
    func routes(for host: String) -> [String] {
        var lines: [String] = []
        let v4 = plan.hostAddresses[host]!
        let v6 = plan.hostAddressesV6[host]
        for other in hosts where other != host {
            let path = router.path(from: host, to: other)
            let device = path.flatMap { self.device(host, $0.hosts[1]) }
            let destination4 = plan.hostAddresses[other]!
            lines.append(
                device.map { "route replace \(destination4)/32 dev \($0) src \(v4)" } ?? "route replace unreachable \(destination4)/32")
            if let v6, let destination6 = plan.hostAddressesV6[other] {
                lines.append(
                    device.map { "route replace \(destination6)/128 dev \($0) src \(v6)" }
                        ?? "route replace unreachable \(destination6)/128")
            }
        }
        // Edges that announce hold the application addresses; everyone else routes them to the nearest that does.
        guard !plan.scenario.topology.announces(host) else { return lines }
        let nearest = router.nearestEdges(from: host).first
        let device = nearest.flatMap { self.device(host, $0.path.hosts[1]) }
        for prefix in ["\(plan.applicationPoolIPv4)", "\(FleetPlan.anycastDNS)/32"] {
            lines.append(device.map { "route replace \(prefix) dev \($0) src \(v4)" } ?? "route replace unreachable \(prefix)")
        }
        if let v6 {
            let prefix = "\(plan.applicationPoolIPv6)"
            lines.append(device.map { "route replace \(prefix) dev \($0) src \(v6)" } ?? "route replace unreachable \(prefix)")
        }
        return lines
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
        return
            "links: \(forwarded) packets carried, \(lost) lost (loss, cuts, full queues) over \(all.count) links (\(linkDevice.withLock { $0 }))"
    }

    public func stop() async {
        for link in links.withLock({ Array($0.values) }) { await link.close() }
        for group in groups.withLock({ Array($0.values) }) { try? await group.shutdownGracefully() }
        NetworkNamespace.delete(hosts.map(namespace))
        for host in hosts { namespace(host).removeResolver() }
    }
}
