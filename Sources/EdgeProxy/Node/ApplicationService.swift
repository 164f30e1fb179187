import EdgeModel
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Settings of an edge node's data plane. Every value has a default that suits a test fleet.
public struct ProxyConfiguration: Sendable {
    /// Name written into every event. Default "edge".
    public var nodeName: String = "edge"
    /// How long to wait for an origin to accept a TCP connection. Default 5 s.
    public var connectTimeout: TimeAmount = .seconds(5)
    /// Per-connection buffer bounds: reads stop while the other side holds more than `high`,
    /// and go on once it holds less than `low`. Default 32 KiB / 256 KiB.
    public var writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 256 * 1024)
    /// SO_SNDBUF of every TCP socket, when set: bounds what the kernel holds for a slow
    /// receiver too (the kernel then stops tuning the buffer to the path). Default nil.
    public var socketSendBuffer: Int?
    /// A UDP flow with no datagram either way for this long is closed. Default 30 s.
    public var udpIdleTimeout: TimeAmount = .seconds(30)
    /// Most UDP flows open at once per listener; the least recently used is evicted. Default 10,000.
    public var udpMaxFlows: Int = 10_000
    /// Largest client datagram payload accepted. Larger ones could only have crossed a 1500-byte
    /// MTU path as IP fragments, and fragmented UDP is dropped. Default 1472 (IPv4) / 1452 (IPv6).
    public var udpMaxPayloadIPv4: Int = 1472
    public var udpMaxPayloadIPv6: Int = 1452
    /// Datagrams queued for a flow while its origin socket opens. Default 64.
    public var udpPendingLimit: Int = 64
    /// Most TCP connections open at once on the node; more are refused as accepted. Default 10,000.
    public var maxTCPConnections: Int = 10_000
    /// Most TCP connections open at once for one application on the node. Default 5,000.
    public var maxTCPConnectionsPerApplication: Int = 5_000
    /// A TCP connection with no byte either way for this long is closed. Default 300 s.
    public var tcpIdleTimeout: TimeAmount = .seconds(300)
    /// Once either side of a TCP connection has half-closed, nothing moving for this long closes
    /// it (the other side stopped reading or answering). Default 30 s.
    public var tcpHalfClosedTimeout: TimeAmount = .seconds(30)
    /// A header a peer must send first (smart routing's relay header) must be complete within
    /// this long. Default 10 s.
    public var headerTimeout: TimeAmount = .seconds(10)
    /// Read sizes of TCP sockets: they grow with what a read brings, up to 256 KiB, so a bulk
    /// transfer moves in few large reads (and TLS records are decrypted in batches). Default
    /// 2 KiB first, 256 KiB at most.
    public var receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)
    /// Where a fleet put the certificates it issued for applications without their own
    /// (`<app id>.pem`, `<app id>-key.pem`) and its CA (`ca.pem`). Default nil: none.
    public var certificateFolder: String?
    /// The address connections and flows to IPv4 origins come from; nil lets the kernel choose.
    /// A fleet on loopback sets the node's own address so the links to origins know the node.
    public var originSourceIPv4: IPAddress?

    /// Plain TCP applications (no TLS, no HTTP, no smart routing, origins given as addresses)
    /// are relayed by the node's own epoll threads (`SocketRelay`) rather than SwiftNIO's
    /// channels, which cost several times as much per connection. Default true.
    public var socketRelay = true

    public init() {}

    /// Sets a relayed TCP socket's options, at once (a bootstrap's channel options would cost a
    /// future each, for every connection): half-closes passed on, the write limits, the read
    /// sizes, the send buffer when configured, and TCP_NODELAY when `noDelay`.
    func configure(_ channel: any Channel, noDelay: Bool) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.allowRemoteHalfClosure, value: true)
        try options.setOption(.writeBufferWaterMark, value: writeBufferWaterMark)
        try options.setOption(.recvAllocator, value: receiveBuffers)
        if noDelay { try options.setOption(.tcpOption(.tcp_nodelay), value: 1) }
        if let socketSendBuffer { try options.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(socketSendBuffer)) }
    }

    /// The configuration a scenario's `limits:` asks for.
    public init(limits: NodeLimits) {
        maxTCPConnections = limits.tcpConnections
        maxTCPConnectionsPerApplication = limits.tcpConnectionsPerApplication
        tcpIdleTimeout = limits.tcpIdleTimeout.timeAmount
        tcpHalfClosedTimeout = limits.tcpHalfClosedTimeout.timeAmount
        headerTimeout = limits.headerTimeout.timeAmount
        connectTimeout = limits.connectTimeout.timeAmount
        udpMaxFlows = limits.udpFlows
        udpIdleTimeout = limits.udpIdleTimeout.timeAmount
        if let bytes = limits.bufferedBytes {
            writeBufferWaterMark = .init(low: max(1, bytes / 8), high: bytes)
            socketSendBuffer = bytes
        }
    }

    /// Where an origin socket binds before connecting, if anywhere.
    func sourceAddress(towards origin: Endpoint) -> SocketAddress? {
        guard let source = originSourceIPv4, origin.address.isIPv4 else { return nil }
        return Endpoint(source, 0).socketAddress
    }
}

/// One application as one node serves it: where its traffic goes and what it may do.
public final class ApplicationService: Sendable {
    public let app: Application
    public let origins: OriginPool
    public let configuration: ProxyConfiguration
    public let events: EventLog
    public let counters: NodeCounters
    /// The node's TCP connection limits, shared by its applications.
    let gate: ConnectionGate
    private let matcher: AccessRuleMatcher?
    /// Set for applications with smart routing on a node that measures paths.
    let smartRouting: SmartRouter?
    /// Edge TLS, for `tls` other than off; a failure is reported on every connection (status 540).
    let tls: Result<EdgeTLS, TLSConfigurationError>?
    /// Origin bootstraps with their options set, one per event loop and source address, made
    /// once rather than for every connection (each is only used on its own loop's thread).
    private let bootstraps = Mutex<[BootstrapKey: ClientBootstrap]>([:])

    private struct BootstrapKey: Hashable {
        var loop: ObjectIdentifier
        var source: SocketAddress?
    }

    public init(
        app: Application, configuration: ProxyConfiguration, events: EventLog, counters: NodeCounters, matcher: AccessRuleMatcher,
        resolver: (any OriginResolving)? = nil, smartRouting: SmartRouter? = nil, gate: ConnectionGate? = nil
    ) {
        self.app = app
        self.gate =
            gate
            ?? ConnectionGate(nodeLimit: configuration.maxTCPConnections, applicationLimit: configuration.maxTCPConnectionsPerApplication)
        self.smartRouting = app.smartRouting ? smartRouting : nil
        self.configuration = configuration
        self.events = events
        self.counters = counters
        self.origins = OriginPool(app: app, resolver: resolver)
        self.matcher = app.ipFirewall && !matcher.isEmpty ? matcher : nil
        tls =
            app.tls == .off
            ? nil : Result { () throws(TLSConfigurationError) in try EdgeTLS(app: app, issuedFolder: configuration.certificateFolder) }
    }

    /// The bootstrap for connections to origins from `loop` (its options set), leaving from
    /// `source` when given. Call it on `loop`, and set its initializer and connect there.
    func originBootstrap(on loop: any EventLoop, source: SocketAddress?) -> ClientBootstrap {
        let key = BootstrapKey(loop: ObjectIdentifier(loop), source: source)
        let configuration = configuration
        return bootstraps.withLock { made in
            if let bootstrap = made[key] { return bootstrap }
            let bootstrap = Self.freshOriginBootstrap(on: loop, source: source, configuration: configuration)
            made[key] = bootstrap
            return bootstrap
        }
    }

    /// The bootstrap sets TCP_NODELAY itself; the other options are set by the connector's
    /// initializer (`ProxyConfiguration.configure`), which costs no future per option.
    static func freshOriginBootstrap(on loop: any EventLoop, source: SocketAddress?, configuration: ProxyConfiguration) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: loop)
        if let source { bootstrap = bootstrap.bind(to: source) }
        return bootstrap.connectTimeout(configuration.connectTimeout)
    }

    /// nil when access rules do not apply to this application.
    public func accessDecision(for address: IPAddress) -> AccessRuleMatcher.Decision? {
        matcher?.decide(address)
    }

    /// How a connection reaches `origin`: through the edges smart routing chose, or straight.
    func connector(towards origin: Endpoint) -> any OriginConnector {
        guard let smartRouting, let via = smartRouting.route(to: origin.address), !via.isEmpty else { return DirectConnector() }
        return EdgeRelayConnector(via: via, router: smartRouting)
    }

    /// Whether another edge may relay this application's traffic to `origin`: one of its own
    /// origins (any address for `origin_dns`, which only resolves at run time).
    func permitsRelay(to origin: Endpoint) -> Bool {
        switch app.origin {
        case .direct(let origins):
            return origins.contains { if case .ip(let address) = $0.host { address == origin.address } else { false } }
        case .dns:
            return true
        }
    }

    /// The PROXY header to send ahead of a TCP connection's bytes, if the app asks for one.
    func proxyHeader(client: Endpoint, edge: Endpoint, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let header = ProxyHeader.proxied(transport: .stream, source: client, destination: edge)
        var buffer = allocator.buffer(capacity: 108)
        switch app.proxyProtocol {
        case .v1: buffer.writeProxyV1(header)
        case .v2: buffer.writeProxyV2(header)
        case .off, .simple: return nil
        }
        return buffer
    }

    func event(
        _ kind: ProxyEvent.Kind, client: Endpoint, edge: Endpoint, origin: Endpoint? = nil, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0,
        duration: TimeAmount? = nil, originRTT: TimeAmount? = nil, status: StatusCode, message: String? = nil, via: [String]? = nil,
        readsHeld: Int? = nil, httpStatus: Int? = nil, firstByte: TimeAmount? = nil
    ) {
        var event = ProxyEvent(
            event: kind, time: Date().timeIntervalSince1970, app: app, node: configuration.nodeName, client: client, edge: edge,
            origin: origin, bytesIn: bytesIn, bytesOut: bytesOut, durationMs: duration.map { Double($0.nanoseconds) / 1e6 },
            originRTTMs: originRTT.map { Double($0.nanoseconds) / 1e6 }, status: status, message: message, via: via,
            readsHeld: readsHeld)
        event.httpStatus = httpStatus
        event.firstByteMs = firstByte.map { Double($0.nanoseconds) / 1e6 }
        events.record(event)
    }
}

extension Duration {
    /// The same span as NIO counts it.
    public var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
