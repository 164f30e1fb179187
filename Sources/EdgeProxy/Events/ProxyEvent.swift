import EdgeModel

/// One thing that happened to a connection or UDP flow, written as one JSON line.
public struct ProxyEvent: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable, CaseIterable {
        case connect
        case progress
        case disconnect
        case clientFiltered
        case tlsError
        case resolveOrigin
        case originError
    }

    public var event: Kind
    /// Seconds since the epoch.
    public var time: Double
    public var app: String
    public var node: String
    public var transport: String
    public var clientIP: String
    public var clientPort: UInt16
    /// 4 or 6 (IPv4-mapped counts as 4).
    public var ipVersion: Int
    /// The edge address and port the client reached.
    public var edge: String
    public var origin: String?
    /// Bytes from the client.
    public var bytesIn: UInt64
    /// Bytes to the client.
    public var bytesOut: UInt64
    public var durationMs: Double?
    /// Time to connect to (or first reply from) the origin.
    public var originRTTMs: Double?
    public var status: Int
    public var tls: String
    public var proxyProtocol: String
    public var message: String?

    public init(
        event: Kind, time: Double, app: Application, node: String, client: Endpoint, edge: Endpoint,
        origin: Endpoint? = nil, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, durationMs: Double? = nil,
        originRTTMs: Double? = nil, status: StatusCode, message: String? = nil
    ) {
        self.event = event
        self.time = time
        self.app = app.id
        self.node = node
        self.transport = app.edge.transport.rawValue
        self.clientIP = client.address.unmapped.description
        self.clientPort = client.port
        self.ipVersion = client.address.unmapped.isIPv4 ? 4 : 6
        self.edge = edge.description
        self.origin = origin?.description
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.durationMs = durationMs
        self.originRTTMs = originRTTMs
        self.status = status.rawValue
        self.tls = app.tls.rawValue
        self.proxyProtocol = app.proxyProtocol.rawValue
        self.message = message
    }
}

/// Status codes carried by events, in the ranges the reference gives.
public enum StatusCode: Int, Sendable, Codable, Hashable {
    case ok = 200
    /// Blocked by an access rule.
    case blocked = 403
    /// The origin reset the connection after it was established.
    case originReset = 444
    /// The origin closed before sending anything back (UDP: no reply before the flow expired).
    case originNoResponse = 445
    /// A datagram from the origin could not be read (e.g. a missing Simple Proxy Protocol header).
    case originBadReply = 446
    /// The client reset the connection.
    case clientReset = 499
    /// A client datagram too large to have arrived unfragmented was dropped.
    case clientFragmented = 496
    /// The flow table was full and this flow was evicted.
    case flowEvicted = 497
    /// The origin refused the connection.
    case originRefused = 520
    /// Connecting to the origin timed out.
    case originTimeout = 522
    /// The origin's address could not be reached.
    case originUnreachable = 523
    /// The origin's name did not resolve.
    case resolveFailed = 530
    /// The resolver did not answer in time.
    case resolveTimeout = 531
    /// The name resolved, but to no address the edge can use.
    case resolveNoAddress = 532
    /// TLS could not be set up from the application's configuration.
    case tlsConfiguration = 540
}
