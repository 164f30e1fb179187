import EdgeDNS
import EdgeModel
import EdgeProxy
import EdgeRouting

/// Where everything of a scenario lives on this machine: each host's address, the addresses the
/// applications are published on, and the applications, rules and prefixes as the edge nodes
/// serve them. Worked out the same way by the runner and by every node process it starts.
public struct FleetPlan: Sendable {
    public enum Mode: String, Sendable, Hashable {
        case loopback
        case netns
    }

    public struct PlanError: Error, CustomStringConvertible {
        public var description: String
    }

    public let scenario: Scenario
    public let mode: Mode
    /// Each host's IPv4 address as the network sees it (in loopback mode, inside 127.18.0.0/15).
    public private(set) var hostAddresses: [String: IPAddress] = [:]
    public private(set) var hostByAddress: [IPAddress: String] = [:]
    /// Each host's IPv6 address (netns mode only; loopback mode has none).
    public private(set) var hostAddressesV6: [String: IPAddress] = [:]
    /// The address every edge node answers DNS on in netns mode (anycast, like the apps).
    public static let anycastDNS = IPAddress("198.18.255.53")!
    /// Edge nodes in topology order; a node's index picks its private addresses.
    public let edgeNodes: [String]
    /// Applications as nodes serve them: topology origins replaced by addresses, and in loopback
    /// mode IPv4 only.
    public private(set) var applications: [Application] = []
    public private(set) var accessRules: [AccessRule] = []
    public private(set) var prefixes: [PrefixInfo] = []
    public let applicationPoolIPv4: IPPrefix
    public let applicationPoolIPv6: IPPrefix
    /// Loopback mode holds at most this many edge nodes (private addresses 127.40-255.x.x).
    public static let loopbackNodeLimit = 107

    public init(scenario: Scenario, mode: Mode) throws(PlanError) {
        self.scenario = scenario
        self.mode = mode
        let topology = scenario.topology
        edgeNodes = topology.edgeNodes.map(\.name)
        if mode == .loopback, edgeNodes.count > Self.loopbackNodeLimit {
            throw PlanError(
                description:
                    "loopback mode holds at most \(Self.loopbackNodeLimit) edge nodes; \(topology.name) has \(edgeNodes.count) (use netns mode)"
            )
        }
        if mode == .loopback, let postfix = topology.origins.first(where: { $0.kind == .postfix }) {
            throw PlanError(
                description:
                    "origin \(postfix.name) (kind postfix) runs in netns mode only: Postfix asks DNS through the system resolver, which the fleet points at its own DNS inside each namespace"
            )
        }
        for app in scenario.applications where app.tls != .off {
            do {
                try EdgeTLS.checkOwnFiles(of: app)
            } catch {
                throw PlanError(description: "\(app.location.file):\(app.location.line): application \(app.id): \(error)")
            }
        }
        applicationPoolIPv4 = Self.translate(topology.pools.applicationsIPv4, mode)
        applicationPoolIPv6 = topology.pools.applicationsIPv6

        // Hosts: fixed addresses first, then the rest from the hosts pools in topology order.
        let hosts = topology.edgeNodes.map(\.name) + topology.clients.map(\.name) + topology.origins.map(\.name)
        var fixed: [String: IPAddress] = [:]
        var fixedV6: [String: IPAddress] = [:]
        for client in topology.clients {
            fixed[client.name] = client.ipv4
            fixedV6[client.name] = client.ipv6
        }
        for origin in topology.origins {
            fixed[origin.name] = origin.ipv4
            fixedV6[origin.name] = origin.ipv6
        }
        for (name, address) in try Self.assign(hosts, fixed: fixed, pool: topology.pools.hostsIPv4) {
            let local = Self.translate(address, mode)
            hostAddresses[name] = local
            hostByAddress[local] = name
        }
        if mode == .netns {
            hostAddressesV6 = try Self.assign(hosts, fixed: fixedV6, pool: topology.pools.hostsIPv6)
            for (name, address) in hostAddressesV6 { hostByAddress[address] = name }
        }
        for app in scenario.applications { applications.append(try served(app, topology: topology)) }
        accessRules = scenario.accessRules.map { rule in
            var rule = rule
            switch rule.target {
            case .ip(let address): rule.target = .ip(Self.translate(address, mode))
            case .prefix(let prefix): rule.target = .prefix(Self.translate(prefix, mode))
            case .country, .asn: break
            }
            return rule
        }
        prefixes = topology.prefixes.map { PrefixInfo(prefix: Self.translate($0.prefix, mode), country: $0.country, asn: $0.asn) }
    }

    /// Each host its fixed address, or the next free one of the pool.
    static func assign(_ hosts: [String], fixed: [String: IPAddress], pool: IPPrefix) throws(PlanError) -> [String: IPAddress] {
        let taken = Set(fixed.values)
        var assigned: [String: IPAddress] = [:]
        var offset: UInt128 = 1
        for name in hosts {
            var address = fixed[name]
            while address == nil {
                guard let candidate = pool.address(at: offset) else {
                    throw PlanError(description: "the hosts pool \(pool) has no address left for \(name)")
                }
                offset += 1
                if !taken.contains(candidate) { address = candidate }
            }
            assigned[name] = address
        }
        return assigned
    }

    /// How `node` measures paths and relays for smart-routed applications: only in netns mode,
    /// where every edge has its own network stack and real paths to the others; nil when no
    /// application asks for it.
    public func smartRouting(for node: String) -> SmartRoutingConfiguration? {
        guard mode == .netns, let address = hostAddresses[node] else { return nil }
        var origins: [Endpoint] = []
        var udpOrigins: [UDPProbeTarget] = []
        for app in applications where app.smartRouting {
            guard case .direct(let addresses) = app.origin else { continue }
            for origin in addresses {
                guard case .ip(let ip) = origin.host else { continue }
                let endpoint = Endpoint(ip, origin.ports.first)
                switch app.edge.transport {
                case .tcp where !origins.contains(where: { $0.address == ip }): origins.append(endpoint)
                case .udp where !udpOrigins.contains(where: { $0.endpoint.address == ip }):
                    udpOrigins.append(UDPProbeTarget(endpoint: endpoint, proxyProtocol: app.proxyProtocol))
                default: break
                }
            }
        }
        guard !origins.isEmpty || !udpOrigins.isEmpty else { return nil }
        let settings = scenario.topology.smartRouting
        var peers: [String: IPAddress] = [:]
        for other in edgeNodes where other != node { peers[other] = hostAddresses[other] }
        var configuration = SmartRoutingConfiguration(node: node, address: address, peers: peers, origins: origins)
        configuration.udpOrigins = udpOrigins
        configuration.interval = settings.probeInterval
        configuration.port = settings.port
        configuration.choice.maximumRelays = settings.maximumRelays
        return configuration
    }

    /// Client and origin hosts with their reverse-DNS names (`ptr:`, or `<host>.hosts.<domain>`)
    /// and addresses as this mode has them; edge nodes have none, as application addresses.
    public func namedHosts(in zones: EdgeZones) -> [NamedHost] {
        let topology = scenario.topology
        let named = topology.clients.map { ($0.name, $0.ptrConfirmed) } + topology.origins.map { ($0.name, true) }
        return named.compactMap { host, confirmed in
            let addresses = [hostAddresses[host], hostAddressesV6[host]].compactMap { $0 }
            return addresses.isEmpty ? nil : NamedHost(name: hostName(host, in: zones), addresses: addresses, confirmed: confirmed)
        }
    }

    /// A client's or origin's name in reverse DNS: its `ptr:`, else `<host>.hosts.<domain>`.
    public func hostName(_ host: String, in zones: EdgeZones) -> DNSName {
        let topology = scenario.topology
        let ptr = topology.clients.first { $0.name == host }?.ptr ?? topology.origins.first { $0.name == host }?.ptr
        return ptr.flatMap { DNSName($0) } ?? zones.defaultHostName(host)
    }

    /// The hosts pools as this mode has them, for their reverse zones.
    public var hostPools: [IPPrefix] {
        let pools = scenario.topology.pools
        return [Self.translate(pools.hostsIPv4, mode)] + (mode == .netns ? [pools.hostsIPv6] : [])
    }

    /// Where an origin's built-in server listens. In loopback mode the host address belongs to
    /// the fabric, which carries each connection from a node across that node's link to the
    /// origin; the origin itself listens on a copy in 127.36.0.0/15. In netns mode, its host address.
    public func originListenAddress(_ origin: String) -> IPAddress? {
        guard let address = hostAddresses[origin] else { return nil }
        guard mode == .loopback, case .v4(let value) = address else { return address }
        return .v4(0x7F24_0000 | (value & 0x1_FFFF))
    }

    /// The address through which an edge node serves a public application address. In netns mode
    /// every node holds the public address itself; in loopback mode each node has its own copy
    /// (127.<40 + 2·index + high bit>.x.y) and the fabric hands connections to it.
    public func nodeAddress(of published: IPAddress, on node: String) -> IPAddress {
        guard mode == .loopback, case .v4(let value) = published, let index = edgeNodes.firstIndex(of: node) else { return published }
        let offset = value & 0x1_FFFF
        return .v4(0x7F00_0000 | UInt32(40 + 2 * index) << 16 + offset)
    }

    /// The edge node and public address a node-private address stands for.
    public func published(_ nodeAddress: IPAddress) -> (node: String, address: IPAddress)? {
        guard mode == .loopback, case .v4(let value) = nodeAddress, value >> 24 == 127 else { return nil }
        let second = Int((value >> 16) & 0xFF)
        guard second >= 40 else { return nil }
        let index = (second - 40) / 2
        guard index < edgeNodes.count else { return nil }
        return (edgeNodes[index], .v4(0x7F12_0000 + (value & 0x1_FFFF)))
    }

    /// A simulated address as it exists on this machine: 198.18.0.0/15 becomes 127.18.0.0/15
    /// in loopback mode (so every one is local without adding aliases); unchanged in netns mode.
    public static func translate(_ address: IPAddress, _ mode: Mode) -> IPAddress {
        guard mode == .loopback, case .v4(let value) = address, value & 0xFFFE_0000 == 0xC612_0000 else { return address }
        return .v4(0x7F12_0000 | (value & 0x1_FFFF))
    }

    static func translate(_ prefix: IPPrefix, _ mode: Mode) -> IPPrefix {
        guard mode == .loopback, prefix.address.isIPv4, prefix.length >= 15, AddressPools.safeIPv4.contains(prefix.address) else {
            return prefix
        }
        return IPPrefix(uncheckedAddress: translate(prefix.address, mode), length: prefix.length)
    }

    /// Where nodes reach these origins (their host addresses, IPv6 too in netns mode), for the
    /// fleet's DNS to give as an origin name's A and AAAA records.
    public func originAddresses(_ origins: [String]) -> [IPAddress] {
        origins.flatMap { [hostAddresses[$0], mode == .netns ? hostAddressesV6[$0] : nil].compactMap { $0 } }
    }

    /// The simulated address a local one stands for (for reports).
    public func simulated(_ address: IPAddress) -> IPAddress {
        guard mode == .loopback, case .v4(let value) = address, value & 0xFFFE_0000 == 0x7F12_0000 else { return address }
        return .v4(0xC612_0000 | (value & 0x1_FFFF))
    }

    /// An application as nodes serve it, in this plan (one added while the fleet runs).
    public func served(_ app: Application) throws(PlanError) -> Application {
        try served(app, topology: scenario.topology)
    }

    private func served(_ app: Application, topology: Topology) throws(PlanError) -> Application {
        var app = app
        if case .direct(let origins) = app.origin {
            app.origin = .direct(
                try origins.map { origin throws(PlanError) in
                    guard case .topologyHost(let name) = origin.host else { return origin }
                    guard let address = hostAddresses[name] else {
                        throw PlanError(description: "app \(app.id): origin host \(name) is not in the topology")
                    }
                    var resolved = origin
                    resolved.host = .ip(address)
                    return resolved
                })
        }
        if mode == .loopback {
            switch app.edgeIPs {
            case .dynamic(.ipv6):
                throw PlanError(
                    description:
                        "app \(app.id) is IPv6 only; loopback mode has one IPv6 loopback address (::1), so IPv6 apps need netns mode")
            case .dynamic: app.edgeIPs = .dynamic(.ipv4)
            case .static(let addresses): app.edgeIPs = .static(addresses.filter(\.isIPv4).map { Self.translate($0, mode) })
            }
        }
        return app
    }
}
