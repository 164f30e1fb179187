/// The simulated network: edge nodes, clients, origins, the links between them, address pools
/// and the prefix table that access rules read country and ASN from.
public struct Topology: Sendable, Hashable {
    public var name: String
    public var description: String
    public var edgeNodes: [EdgeNodeSpec]
    public var clients: [ClientSpec]
    public var origins: [OriginSpec]
    public var links: [LinkSpec]
    public var pools: AddressPools
    public var prefixes: [PrefixInfo]
    /// How edge nodes measure paths for applications with smart routing.
    public var smartRouting = SmartRoutingSettings()
    /// Regions and nodes that do not announce the application addresses.
    public var anycast = AnycastSettings()
    public var location: SourceLocation

    /// Every host name, of any kind.
    public var hostNames: [String] { edgeNodes.map(\.name) + clients.map(\.name) + origins.map(\.name) }

    public func origin(named name: String) -> OriginSpec? { origins.first { $0.name == name } }
    public func client(named name: String) -> ClientSpec? { clients.first { $0.name == name } }
    public func edgeNode(named name: String) -> EdgeNodeSpec? { edgeNodes.first { $0.name == name } }

    /// Whether an edge node announces the application addresses: not when its region, or the
    /// node itself, is excluded (`anycast:`). It still runs, relays and answers probes.
    public func announces(_ node: String) -> Bool {
        guard let spec = edgeNode(named: node) else { return false }
        if anycast.excludedNodes.contains(node) { return false }
        return spec.region.map { !anycast.excludedRegions.contains($0) } ?? true
    }

    public func link(between a: String, _ b: String) -> LinkSpec? {
        links.first { ($0.a == a && $0.b == b) || ($0.a == b && $0.b == a) }
    }
}

/// `smart_routing:` in a topology. Every value has a default.
public struct SmartRoutingSettings: Sendable, Hashable {
    /// How often each edge probes every other edge and every smart-routed origin. Default 1 s.
    public var probeInterval: Duration = .seconds(1)
    /// Port on each edge's own address for probes (UDP) and relayed connections (TCP). Default 7301.
    public var port: UInt16 = 7301
    /// Most edge nodes a relayed path goes through. Default 2.
    public var maximumRelays = 2

    public init() {}
}

/// `anycast:` in a topology: where application addresses are not announced, as a provider
/// leaves out the data centers of one region. Clients near them land on the nearest node that
/// announces.
public struct AnycastSettings: Sendable, Hashable {
    public var excludedRegions: [String] = []
    public var excludedNodes: [String] = []

    public init() {}
}

public struct Coordinates: Sendable, Hashable {
    public var latitude: Double
    public var longitude: Double
}

public struct EdgeNodeSpec: Sendable, Hashable {
    public var name: String
    public var city: String?
    public var region: String?
    public var coordinates: Coordinates?
}

public struct ClientSpec: Sendable, Hashable {
    public var name: String
    public var city: String?
    /// The name its address has in reverse DNS (PTR), with a forward A/AAAA to match; nil is
    /// `<name>.hosts.<fleet domain>`.
    public var ptr: String?
    /// False: the PTR name has no address record pointing back, so forward-confirmed reverse
    /// DNS fails for this client (as for many generic ISP names). Default true.
    public var ptrConfirmed: Bool = true
    /// Fixed addresses; assigned from the host pools when absent.
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?
    /// Where it is on the map (the dashboard); optional.
    public var coordinates: Coordinates?
}

public struct OriginSpec: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case tcpEcho = "tcp-echo"
        case udpEcho = "udp-echo"
        case http
        /// A small SMTP server: takes one message per transaction, optionally checking the
        /// connecting address's reverse DNS first (`checks:`).
        case smtp
        /// Debian's Postfix, configured and started by the fleet in the origin's namespace.
        case postfix
        /// A user's own program.
        case command

        var defaultPorts: [PortRange] {
            switch self {
            case .tcpEcho, .udpEcho: return [PortRange(port: 7)]
            case .http: return [PortRange(port: 80)]
            case .smtp, .postfix: return [PortRange(port: 25)]
            case .command: return []
            }
        }
    }

    public var name: String
    public var kind: Kind
    public var transport: Transport
    public var ports: [PortRange]
    /// For `command`: the program and its arguments; `{port}` and `{address}` are filled in.
    public var command: [String]
    /// What the origin expects in front of each connection or datagram.
    public var proxyProtocol: ProxyProtocolMode
    public var banner: String?
    /// For `smtp` and `postfix`: what the mail server checks about the connecting address
    /// before it takes a message. `postfix` defaults to `[fcrdns]`, `smtp` to none.
    public var checks: [MailCheck] = []
    /// Whether the built-in origin serves TLS, and with which certificate.
    public var tls: OriginTLS?
    public var city: String?
    /// The name its address has in reverse DNS (PTR); nil is `<name>.hosts.<fleet domain>`.
    public var ptr: String?
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?
    /// Where it is on the map (the dashboard); optional.
    public var coordinates: Coordinates?

    public func listens(on ports: PortRange) -> Bool {
        self.ports.contains { $0.first <= ports.first && ports.last <= $0.last }
    }
}

/// `tls:` of a built-in origin: `true` for a certificate the fleet's local CA issues for the
/// origin's name and addresses, or `{cert, key}` files of its own.
public enum OriginTLS: Sendable, Hashable {
    case issued
    case files(certificate: String, key: String)
}

/// A reverse-DNS check a mail server makes on the address a connection comes from (the one
/// the PROXY header names when the server expects one, else the peer's).
public enum MailCheck: String, Sendable, Hashable, CaseIterable {
    /// The address has a PTR record.
    case ptr
    /// The HELO/EHLO name is the address's PTR name (built-in); Postfix: the HELO name has an
    /// address or MX record (`reject_unknown_helo_hostname`).
    case helo
    /// Forward-confirmed reverse DNS: the PTR name has an address record pointing back.
    case fcrdns
}

/// A link's behaviour in each direction.
public struct LinkShape: Sendable, Hashable {
    /// One-way delay.
    public var latency: Duration = .zero
    public var jitter: Duration = .zero
    /// Fraction of packets lost, 0...1.
    public var loss: Double = 0
    /// Bits per second; nil is unlimited.
    public var bandwidth: UInt64?

    public init(latency: Duration = .zero, jitter: Duration = .zero, loss: Double = 0, bandwidth: UInt64? = nil) {
        self.latency = latency
        self.jitter = jitter
        self.loss = loss
        self.bandwidth = bandwidth
    }
}

public struct LinkSpec: Sendable, Hashable {
    public var a: String
    public var b: String
    public var shape: LinkShape
    public var location: SourceLocation
}

public struct AddressPools: Sendable, Hashable {
    /// The ranges simulated addresses must stay inside, so nothing can reach a real network.
    public static let safeIPv4 = IPPrefix(uncheckedAddress: .v4(0xC612_0000), length: 15)  // 198.18.0.0/15
    public static let safeIPv6 = IPPrefix(uncheckedAddress: IPAddress("2001:db8::")!, length: 32)

    public var applicationsIPv4 = IPPrefix(uncheckedAddress: IPAddress("198.19.0.0")!, length: 16)
    public var applicationsIPv6 = IPPrefix(uncheckedAddress: IPAddress("2001:db8:a::")!, length: 48)
    public var hostsIPv4 = IPPrefix(uncheckedAddress: IPAddress("198.18.0.0")!, length: 16)
    public var hostsIPv6 = IPPrefix(uncheckedAddress: IPAddress("2001:db8:1::")!, length: 48)

    public init() {}
}

/// One row of the prefix table: which country and AS a client block belongs to.
public struct PrefixInfo: Sendable, Hashable {
    public var prefix: IPPrefix
    public var country: String?
    public var asn: UInt32?

    public init(prefix: IPPrefix, country: String? = nil, asn: UInt32? = nil) {
        self.prefix = prefix
        self.country = country
        self.asn = asn
    }
}
