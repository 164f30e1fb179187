/// A test run: a topology, the applications on it, a timeline of traffic and faults, and the
/// expectations checked at the end.
public struct Scenario: Sendable, Hashable {
    public var name: String
    public var description: String
    /// The topology file, as an absolute path.
    public var topologyPath: String
    public var topology: Topology
    public var applications: [Application]
    public var accessRules: [AccessRule]
    public var mode: RunMode
    /// The run stops (and fails) if it has not finished by then.
    public var timeout: Duration
    public var rotation: RotationSchedule?
    public var timeline: [TimedStep]
    public var expectations: [Expectation]
    /// What every edge node holds at most and how long it waits (`limits:`).
    /// Names the fleet's DNS answers with origins' addresses (`origin_names`).
    public var originNames: [OriginName] = []
    /// Packet captures written while the run goes (`capture:`).
    public var captures: [CaptureRequest] = []
    public var limits = NodeLimits()
    public var location: SourceLocation

    /// An application by id or DNS name.
    public func application(_ reference: String) -> Application? {
        applications.first { $0.id == reference || $0.dns.name == reference.lowercased() }
    }
}

extension Scenario {
    /// A fleet with no timeline and no checks (`edgesim up`): a topology and the applications
    /// to run on it.
    public init(
        topology: Topology, topologyPath: String, applications: [Application], rotation: RotationSchedule? = nil, mode: RunMode = .auto
    ) {
        name = "up"
        description = ""
        self.topologyPath = topologyPath
        self.topology = topology
        self.applications = applications
        accessRules = []
        self.mode = mode
        timeout = .seconds(365 * 86_400)
        self.rotation = rotation
        timeline = []
        expectations = []
        location = SourceLocation(file: topologyPath)
    }
}

public enum RunMode: String, Sendable, Hashable, CaseIterable {
    /// Network namespaces when root, else loopback aliases.
    case auto
    case netns
    case loopback
}

/// `rotation: {every: 30s, drain: 10s, apps: [...]}`: addresses change on a schedule.
public struct RotationSchedule: Sendable, Hashable {
    public var every: Duration
    public var drain: Duration
    /// Application ids; empty means every application with dynamic addresses.
    public var applications: [String]

    public init(every: Duration, drain: Duration, applications: [String] = []) {
        self.every = every
        self.drain = drain
        self.applications = applications
    }
}

public struct TimedStep: Sendable, Hashable {
    public var at: Duration
    public var step: Step
    public var location: SourceLocation
}

/// One thing that happens on the timeline. Each case has its own type and decoder.
public enum Step: Sendable, Hashable {
    case traffic(TrafficStep)
    case replay(ReplayStep)
    case link(LinkStep)
    case node(HostStep)
    case origin(HostStep)
    case rotate(RotateStep)
    case originName(OriginNameStep)

    public static let kinds = ["traffic", "replay", "link", "node", "origin", "rotate", "origin_name"]
}

/// A name the fleet's DNS answers with origins' addresses, for applications with `origin_dns`.
public struct OriginName: Sendable, Hashable {
    /// Lowercase, without the final dot.
    public var name: String
    /// Topology origins whose addresses the name has (A and AAAA).
    public var origins: [String]
    public var ttl: Duration

    public init(name: String, origins: [String], ttl: Duration = .seconds(5)) {
        self.name = name
        self.origins = origins
        self.ttl = ttl
    }
}

/// Points an origin name at other origins: the fleet's DNS answers with their addresses from
/// now on (nodes see it once the old answer's TTL runs out).
public struct OriginNameStep: Sendable, Hashable {
    public var name: String
    public var origins: [String]

    public init(name: String, origins: [String]) {
        self.name = name
        self.origins = origins
    }
}

/// Built-in traffic from one or more clients to an application.
public struct TrafficStep: Sendable, Hashable {
    public var clients: [String]
    /// Application id.
    public var application: String
    /// TCP connections, or UDP flows, per client.
    public var connections: Int
    public var concurrency: Int
    /// Bytes sent on each connection or flow (echoed back by echo origins).
    public var bytes: UInt64
    /// New connections per second per client; nil is as fast as concurrency allows.
    public var rate: Double?
    /// Resolve the application name through the fleet's DNS (honouring TTLs) rather than using
    /// the address known at start.
    public var resolve: Bool
    /// Keep each connection open this long (for long-lived connection checks).
    public var hold: Duration
    /// Which of the application's addresses the client uses.
    public var family: AddressFamilyChoice = .ipv4
    /// For an application with edge TLS: the one TLS version the client offers (`tls_version`);
    /// nil offers 1.2 and 1.3.
    public var tlsVersion: TLSVersionSetting?
}

/// `family:` of a traffic step.
public enum AddressFamilyChoice: String, Sendable, Hashable, CaseIterable {
    /// A records, the client's IPv4 address.
    case ipv4
    /// AAAA records, the client's IPv6 address.
    case ipv6
    /// Both, IPv6 first and IPv4 started 250 ms later if IPv6 has not connected by then (happy
    /// eyeballs, RFC 8305); UDP uses IPv6 when the name has an AAAA record.
    case any
}

/// A capture replayed from a client towards an application.
public struct ReplayStep: Sendable, Hashable {
    /// Where the captured flows are sent.
    public enum Target: Sendable, Hashable {
        /// Every flow of the application's transport, to its address (the captured server port
        /// when the application listens on it, else its first port).
        case application(String)
        /// Captured server port to an application id, or to `fleet_dns` (the fleet's own DNS
        /// responder); flows on other ports are left out and counted.
        case ports([UInt16: String])
    }

    /// How replies are checked against the captured ones.
    public enum Compare: String, Sendable, Hashable, CaseIterable {
        /// Only that the flow ran: connected, sent everything, no error.
        case none
        /// The same number of reply bytes (TCP) or datagrams of the same sizes (UDP).
        case length
        /// Byte for byte.
        case exact
    }

    /// The map value that names the fleet's DNS responder.
    public static let fleetDNS = "fleet_dns"

    /// Absolute path of the pcap or pcapng file.
    public var capture: String
    public var client: String
    public var target: Target
    /// 1 is the capture's own pace; 0 is as fast as possible.
    public var speed: Double
    public var compare: Compare
    /// A libpcap filter expression choosing the records to replay.
    public var filter: String?
    /// Silence after which a UDP conversation on the same addresses counts as a new flow.
    public var udpIdle: Duration

    public init(
        capture: String, client: String, target: Target, speed: Double = 1, compare: Compare = .length, filter: String? = nil,
        udpIdle: Duration = .seconds(60)
    ) {
        self.capture = capture
        self.client = client
        self.target = target
        self.speed = speed
        self.compare = compare
        self.filter = filter
        self.udpIdle = udpIdle
    }

    /// The application ids the step sends to.
    public var applications: [String] {
        switch target {
        case .application(let id): return [id]
        case .ports(let map): return Set(map.values).subtracting([Self.fleetDNS]).sorted()
        }
    }
}

/// A link degraded, cut or restored.
public struct LinkStep: Sendable, Hashable {
    public enum Change: Sendable, Hashable {
        case set(LinkShape)
        case cut
        case restore
    }

    public var a: String
    public var b: String
    public var change: Change

    public init(a: String, b: String, change: Change) {
        self.a = a
        self.b = b
        self.change = change
    }
}

/// A node or origin stopped, started or restarted.
public struct HostStep: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable, CaseIterable {
        case stop
        case start
        case restart
        /// Killed with SIGKILL, as a crash.
        case kill
        /// Suspended (SIGSTOP), as a stalled machine: nodes only.
        case freeze
        /// Resumed after a freeze (SIGCONT): nodes only.
        case thaw
        /// Accepts connections, then neither reads nor answers (on open ones too): built-in TCP
        /// origins only; `start` ends it.
        case blackhole
        /// Resets every connection, open and new: built-in TCP origins only; `start` ends it.
        case reset
        /// Reads each connection, open and new, at most `read_rate` bytes a second (a slow or
        /// overloaded server): built-in TCP origins only; `start` ends it.
        case slowRead = "slow_read"
    }

    public var name: String
    public var action: Action
    /// Bytes a second, for `slow_read`.
    public var readRate: UInt64?

    public init(name: String, action: Action, readRate: UInt64? = nil) {
        self.name = name
        self.action = action
        self.readRate = readRate
    }
}

/// Rotate the addresses of applications now.
public struct RotateStep: Sendable, Hashable {
    /// Application ids; empty means all with dynamic addresses.
    public var applications: [String]
    public var drain: Duration?
}

/// A check made when the timeline has run.
public enum Expectation: Sendable, Hashable {
    /// Share of connections/flows that succeed (`at_least: 100%`).
    case successRate(scope: TrafficScope, atLeast: Double)
    /// Connect time at a percentile under a bound.
    case connectTime(scope: TrafficScope, percentile: Double, below: Duration)
    /// Time to first byte at a percentile: under a bound, or lower than another application's
    /// at the same percentile from the same clients (e.g. smart routing against straight).
    case firstByteTime(scope: TrafficScope, percentile: Double, bound: TimeBound)
    /// The origin saw each client's own address (through PROXY protocol or SPP).
    case clientAddressSeen(scope: TrafficScope)
    /// Every connection from these clients was blocked by an access rule.
    case blocked(scope: TrafficScope)
    /// Connections from these clients were served by this edge node.
    case servedBy(scope: TrafficScope, node: String)
    /// At least this many connections or flows of the application were carried to this origin
    /// (the origin address in the nodes' connect events).
    case originReached(scope: TrafficScope, origin: String, atLeast: Int)
    /// At least this many rotations happened for the application.
    case rotations(application: String, atLeast: Int)
    /// After the drain period, an old address refuses new connections.
    case oldAddressRefused(application: String)
    /// Connections open before a rotation were still open and working after it.
    case connectionsSurvived(application: String)
    /// Every message these clients sent was refused by the mail origin with a 4xx/5xx reply
    /// (whose text contains `reason`, when given).
    case clientRejected(scope: TrafficScope, reason: String?)
    /// Every message these clients sent was taken by the mail origin.
    case clientAccepted(scope: TrafficScope)
    /// The fleet noticed the node stopped answering (frozen) and reported it down.
    case nodeReportedDown(node: String)
    /// Nodes enforced a limit on this traffic at least this many times: `connections` (refused
    /// over tcp_connections, status 495) or `idle` (closed by an idle or half-closed timeout, 498).
    case limited(scope: TrafficScope, limit: String, atLeast: Int)
    /// Once the run is over nothing of it is left: namespaces, resolver and scratch folders,
    /// node processes.
    case noLeftovers
    /// Every node process and the runner stay under `maxRSS` bytes at the end and grew by at
    /// most `maxGrowth` bytes and `maxDescriptorGrowth` descriptors from when the fleet was up.
    /// `processes`: edge node names and `runner`; empty means every process.
    case memoryBounded(maxRSS: UInt64, maxGrowth: UInt64, maxDescriptorGrowth: Int, processes: [String] = [])
    /// Share of replayed flows that completed (and matched the capture's replies, as the step
    /// compares them); `application` nil: every replay step's flows.
    case replaySuccess(application: String?, atLeast: Double)
    /// How late (or early) sends were against the capture's schedule, at a percentile.
    case replayTiming(application: String?, percentile: Double, below: Duration)
    /// Every TLS connection of the scope negotiated this version.
    case tlsVersion(scope: TrafficScope, version: TLSVersionSetting)
    /// Every HTTP exchange of the scope got this status.
    case httpStatus(scope: TrafficScope, status: Int)
    /// For every HTTP exchange of the scope, the origin said it got this header naming the
    /// client's own address.
    case headerSeen(scope: TrafficScope, header: String)

    public static let kinds = [
        "success_rate", "connect_time", "first_byte_time", "client_address_seen", "blocked", "served_by", "rotations",
        "old_address_refused", "connections_survived", "client_rejected", "client_accepted", "node_reported_down", "no_leftovers",
        "memory_bounded", "limited", "origin_reached", "replay_success", "replay_timing", "tls_version", "http_status", "header_seen",
    ]
}

/// What a time is compared with.
public enum TimeBound: Sendable, Hashable {
    case below(Duration)
    case lowerThan(application: String)
}

/// Which traffic a check looks at; nil fields match everything.
public struct TrafficScope: Sendable, Hashable {
    public var application: String?
    public var clients: [String]

    public init(application: String? = nil, clients: [String] = []) {
        self.application = application
        self.clients = clients
    }
}

/// `capture: {host, file, filter}`: what crosses a host written to a pcapng file.
public struct CaptureRequest: Sendable, Hashable {
    /// A client, edge node or origin of the topology.
    public var host: String
    /// Where the pcapng file goes (relative to the directory edgesim runs in).
    public var file: String
    /// A libpcap filter expression (as tcpdump takes).
    public var filter: String?

    public init(host: String, file: String, filter: String? = nil) {
        self.host = host
        self.file = file
        self.filter = filter
    }

    /// `HOST:FILE` from the command line.
    public init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(host: parts[0], file: parts[1])
    }
}
