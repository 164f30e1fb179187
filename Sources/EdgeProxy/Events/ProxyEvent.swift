import EdgeModel
import Foundation

/// One thing that happened to a connection or UDP flow, written as one JSON line.
public struct ProxyEvent: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable, CaseIterable {
        case connect
        case progress
        case disconnect
        case clientFiltered
        /// Refused as accepted: the node or the application was at its connection limit.
        case clientLimited
        case tlsError
        case resolveOrigin
        case originError
        /// One HTTP request of an http or https application, answered (status is the HTTP status).
        case request
    }

    public var event: Kind
    /// Seconds since the epoch.
    public var time: Double
    public var app: String
    public var node: String
    public var transport: Transport
    /// The client, IPv4-mapped IPv6 already unmapped. Kept as numbers: text is made only when an
    /// event is written out, since every connection makes at least two events.
    public var client: Endpoint
    /// The edge address and port the client reached.
    public var edgeEndpoint: Endpoint
    public var originEndpoint: Endpoint?
    /// Bytes from the client.
    public var bytesIn: UInt64
    /// Bytes to the client.
    public var bytesOut: UInt64
    public var durationMs: Double?
    /// Time to connect to (or first reply from) the origin.
    public var originRTTMs: Double?
    /// TCP: from accepting the connection to the origin's first byte for the client (disconnect
    /// events of connections that got one).
    public var firstByteMs: Double?
    public var statusCode: StatusCode
    public var tls: TLSMode
    public var proxyProtocol: ProxyProtocolMode
    public var message: String?
    /// Edge nodes a smart-routed connection went through to its origin; nil for direct.
    public var via: [String]?
    /// Times reading from one side waited because the other held `buffered_bytes` it had not
    /// yet taken (a slow reader); nil when never.
    public var readsHeld: Int?
    /// For `request` events: the HTTP status the client got, written as `status`.
    public var httpStatus: Int?

    public init(
        event: Kind, time: Double, app: Application, node: String, client: Endpoint, edge: Endpoint,
        origin: Endpoint? = nil, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, durationMs: Double? = nil,
        originRTTMs: Double? = nil, status: StatusCode, message: String? = nil, via: [String]? = nil, readsHeld: Int? = nil
    ) {
        self.init(
            event: event, time: time, app: app.id, node: node, transport: app.edge.transport,
            client: Endpoint(client.address.unmapped, client.port), edge: edge, origin: origin, bytesIn: bytesIn, bytesOut: bytesOut,
            durationMs: durationMs, originRTTMs: originRTTMs, status: status, tls: app.tls, proxyProtocol: app.proxyProtocol,
            message: message, via: via?.isEmpty == false ? via : nil, readsHeld: readsHeld.flatMap { $0 > 0 ? $0 : nil })
    }

    /// An event with every field given (decoding, tests).
    public init(
        event: Kind, time: Double, app: String, node: String, transport: Transport, client: Endpoint, edge: Endpoint,
        origin: Endpoint? = nil, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, durationMs: Double? = nil, originRTTMs: Double? = nil,
        status: StatusCode = .ok, tls: TLSMode = .off, proxyProtocol: ProxyProtocolMode = .off, message: String? = nil,
        via: [String]? = nil, readsHeld: Int? = nil, httpStatus: Int? = nil
    ) {
        self.event = event
        self.time = time
        self.app = app
        self.node = node
        self.transport = transport
        self.client = client
        self.edgeEndpoint = edge
        self.originEndpoint = origin
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.durationMs = durationMs
        self.originRTTMs = originRTTMs
        self.statusCode = status
        self.tls = tls
        self.proxyProtocol = proxyProtocol
        self.message = message
        self.via = via
        self.readsHeld = readsHeld
        self.httpStatus = httpStatus
    }

    public var clientIP: String { client.address.description }
    public var clientPort: UInt16 { client.port }
    /// 4 or 6 (IPv4-mapped counts as 4).
    public var ipVersion: Int { client.address.isIPv4 ? 4 : 6 }
    public var edge: String { edgeEndpoint.description }
    public var origin: String? { originEndpoint?.description }
    public var status: Int { httpStatus ?? statusCode.rawValue }

    private enum CodingKeys: String, CodingKey {
        case event, time, app, node, transport, clientIP, clientPort, ipVersion, edge, origin, bytesIn, bytesOut
        case durationMs, firstByteMs, originRTTMs, status, tls, proxyProtocol, message, via, readsHeld
    }

    public struct UnreadableEvent: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads an event as `appendJSONLine` and `encode` write it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func value<T>(_ key: CodingKeys, _ parse: (String) -> T?) throws -> T {
            let text = try container.decode(String.self, forKey: key)
            guard let value = parse(text) else { throw UnreadableEvent(description: "\(key.stringValue) '\(text)' cannot be read") }
            return value
        }
        event = try container.decode(Kind.self, forKey: .event)
        time = try container.decode(Double.self, forKey: .time)
        app = try container.decode(String.self, forKey: .app)
        node = try container.decode(String.self, forKey: .node)
        transport = try value(.transport, Transport.init(rawValue:))
        client = Endpoint(try value(.clientIP, IPAddress.init), try container.decode(UInt16.self, forKey: .clientPort))
        edgeEndpoint = try value(.edge, Endpoint.init)
        originEndpoint = try container.decodeIfPresent(String.self, forKey: .origin).flatMap(Endpoint.init)
        bytesIn = try container.decode(UInt64.self, forKey: .bytesIn)
        bytesOut = try container.decode(UInt64.self, forKey: .bytesOut)
        durationMs = try container.decodeIfPresent(Double.self, forKey: .durationMs)
        originRTTMs = try container.decodeIfPresent(Double.self, forKey: .originRTTMs)
        firstByteMs = try container.decodeIfPresent(Double.self, forKey: .firstByteMs)
        let status = try container.decode(Int.self, forKey: .status)
        // A request's status is the HTTP status the client got; other events carry edgesim's codes.
        if event == .request {
            statusCode = .ok
            httpStatus = status
        } else {
            guard let code = StatusCode(rawValue: status) else { throw UnreadableEvent(description: "unknown status \(status)") }
            statusCode = code
        }
        tls = try value(.tls, TLSMode.init(rawValue:))
        proxyProtocol = try value(.proxyProtocol, ProxyProtocolMode.init(rawValue:))
        message = try container.decodeIfPresent(String.self, forKey: .message)
        via = try container.decodeIfPresent([String].self, forKey: .via)
        readsHeld = try container.decodeIfPresent(Int.self, forKey: .readsHeld)
    }

    /// An event from one JSON line a node wrote; nil when the line is not one.
    public static func decoded(fromJSONLine line: some Collection<UInt8>) -> ProxyEvent? {
        try? JSONDecoder().decode(ProxyEvent.self, from: Data(line))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(event, forKey: .event)
        try container.encode(time, forKey: .time)
        try container.encode(app, forKey: .app)
        try container.encode(node, forKey: .node)
        try container.encode(transport.rawValue, forKey: .transport)
        try container.encode(clientIP, forKey: .clientIP)
        try container.encode(clientPort, forKey: .clientPort)
        try container.encode(ipVersion, forKey: .ipVersion)
        try container.encode(edge, forKey: .edge)
        try container.encodeIfPresent(origin, forKey: .origin)
        try container.encode(bytesIn, forKey: .bytesIn)
        try container.encode(bytesOut, forKey: .bytesOut)
        try container.encodeIfPresent(durationMs, forKey: .durationMs)
        try container.encodeIfPresent(firstByteMs, forKey: .firstByteMs)
        try container.encodeIfPresent(originRTTMs, forKey: .originRTTMs)
        try container.encode(status, forKey: .status)
        try container.encode(tls.rawValue, forKey: .tls)
        try container.encode(proxyProtocol.rawValue, forKey: .proxyProtocol)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encodeIfPresent(via, forKey: .via)
        try container.encodeIfPresent(readsHeld, forKey: .readsHeld)
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
    /// Closed by the node: nothing moved for the idle or half-closed timeout, or a header did
    /// not arrive in time.
    case idleTimeout = 498
    /// The client reset the connection.
    case clientReset = 499
    /// Refused: the node or application was at its connection limit.
    case connectionLimit = 495
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
    /// The client's TLS handshake with the edge failed (or it sent no ClientHello).
    case clientHandshakeFailed = 494
    /// The TLS handshake with the origin failed.
    case originHandshakeFailed = 525
    /// Strict mode refused the origin's certificate (untrusted, expired, or for another name).
    case originCertificateInvalid = 526
    /// TLS could not be set up from the application's configuration.
    case tlsConfiguration = 540
}
