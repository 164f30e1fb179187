import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A built-in TCP origin: an echo server that honours half-close, an SMTP-like server that
/// greets with a banner, or a small HTTP server. When told to expect a PROXY header it reads it
/// first and records the client address it names.
public final class TCPOrigin: Sendable {
    public enum Responder: Sendable, Hashable {
        case echo
        /// A mail server taking one message per transaction, checking clients first.
        case smtp(MailServerSettings)
        /// `200 OK` to each request, naming the client and the headers it got; keep-alive.
        case http
    }

    /// One accepted connection as the origin saw it.
    public struct Seen: Sendable, Hashable {
        /// The address the TCP connection came from (the edge, unless nothing is in between).
        public var peer: Endpoint
        /// The local port it arrived on.
        public var localPort: UInt16
        /// The PROXY header, when one was expected.
        public var header: ProxyHeader?
    }

    /// How the origin misbehaves on purpose (a fault step), for open and new connections alike.
    public enum Fault: Sendable, Hashable {
        case none
        /// Accepts, then neither reads nor answers (a blackholed or hung server).
        case silent
        /// Resets every connection (SO_LINGER 0 and close).
        case reset
        /// Reads each connection at most this many bytes a second (a tenth of it every 100 ms).
        case slowRead(bytesPerSecond: Int)
    }

    private let faults = FaultState()
    private let expect: ProxyProtocolMode
    private let responder: Responder
    private let seen = Recorder<Seen>()
    private let mail = Recorder<MailOutcome>()
    private let channels = OpenChannels()
    private let group: any EventLoopGroup

    /// How long a sender may take over its PROXY header. Default 10 s.
    private let headerTimeout: TimeAmount
    /// PEM certificate and key files, when the origin serves TLS (after any PROXY header).
    private let tls: (certificate: String, key: String)?

    public init(
        expecting proxyProtocol: ProxyProtocolMode = .off, responder: Responder = .echo,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, headerTimeout: TimeAmount = .seconds(10),
        tls: (certificate: String, key: String)? = nil
    ) {
        expect = proxyProtocol
        self.responder = responder
        self.group = group
        self.headerTimeout = headerTimeout
        self.tls = tls
    }

    /// The TLS context the origin serves with, from its files.
    private func tlsContext() throws -> NIOSSLContext? {
        guard let tls else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
        configuration.minimumTLSVersion = .tlsv11
        return try NIOSSLContext(configuration: configuration)
    }

    /// Connections seen so far, in the order their headers (or first bytes) arrived.
    public var connections: [Seen] { seen.all }

    /// How each mail transaction ended (smtp only), in order.
    public var mailOutcomes: [MailOutcome] { mail.all }

    /// Listens on `address` at each port (0 for any free port); returns the bound endpoints.
    @discardableResult
    public func start(address: IPAddress, ports: [UInt16] = [0]) async throws -> [Endpoint] {
        var bound: [Endpoint] = []
        let tls = try tlsContext()
        for port in ports {
            let channel = try await group.onLoop { [expect, seen, responder, mail, group, faults, headerTimeout] loop in
                ServerBootstrap(group: loop)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { [expect, seen, responder, mail, group, faults, headerTimeout, tls] channel in
                        channel.eventLoop.makeCompletedFuture {
                            let fault = faults.accept(channel)
                            if fault != .none { Self.apply(fault, to: channel, faults: faults) }
                            let peer = channel.remoteAddress.flatMap(Endpoint.init) ?? Endpoint(.v4(0), 0)
                            let localPort = UInt16(channel.localAddress?.port ?? 0)
                            let handler = Self.handler(responder, awaitsHeader: expect == .v1 || expect == .v2, group: group, mail: mail)
                            var handlers: [any ChannelHandler]
                            switch expect {
                            case .v1, .v2:
                                let receiver = ProxyHeaderReceiver(version: expect == .v1 ? .v1 : .v2, timeout: headerTimeout) { header in
                                    seen.append(Seen(peer: peer, localPort: localPort, header: header))
                                }
                                handlers = [receiver, handler]
                            default:
                                seen.append(Seen(peer: peer, localPort: localPort, header: nil))
                                handlers = [handler]
                            }
                            // TLS starts after the PROXY header, which comes in the clear.
                            if let tls { handlers.insert(NIOSSLServerHandler(context: tls), at: handlers.count - 1) }
                            try channel.pipeline.syncOperations.addHandlers(handlers)
                        }
                    }
                    .bind(to: Endpoint(address, port).socketAddress)
            }.get()
            channels.add(channel)
            if let endpoint = channel.localAddress.flatMap(Endpoint.init) { bound.append(endpoint) }
        }
        return bound
    }

    public func stop() async {
        setFault(.none)
        await channels.closeAll()
    }

    /// Starts (or ends, with `.none`) misbehaving, on every open connection and each new one.
    public func setFault(_ new: Fault) {
        for channel in faults.set(new) { Self.apply(new, to: channel, faults: faults) }
    }

    private static func apply(_ fault: Fault, to channel: any Channel, faults: FaultState) {
        switch fault {
        case .none:
            channel.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())
                .flatMap { channel.setOption(.maxMessagesPerRead, value: 4) }
                .flatMap { channel.setOption(.autoRead, value: true) }
                .whenSuccess { channel.read() }
        case .silent: channel.setOption(.autoRead, value: false).whenComplete { _ in }
        case .slowRead(let rate):
            // One read of a tenth of the rate every 100 ms, for as long as this fault lasts.
            channel.setOption(.autoRead, value: false)
                .flatMap { channel.setOption(.maxMessagesPerRead, value: 1) }
                .flatMap { channel.setOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: max(1, rate / 10))) }
                .whenSuccess {
                    channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { task in
                        guard channel.isActive, faults.current == fault else { return task.cancel() }
                        channel.read()
                    }
                }
        case .reset:
            guard let options = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
            options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private static func handler(_ responder: Responder, awaitsHeader: Bool, group: any EventLoopGroup, mail: Recorder<MailOutcome>)
        -> any ChannelHandler
    {
        switch responder {
        case .echo: return EchoHandler()
        case .smtp(let settings):
            let lookup = settings.resolver.map { ReverseDNSLookup(client: DNSClient(server: $0, timeout: .seconds(1), group: group)) }
            return SMTPResponder(
                banner: settings.banner, hostname: settings.hostname, checks: settings.checks, lookup: lookup,
                awaitsHeader: awaitsHeader, onOutcome: { mail.append($0) })
        case .http: return HTTPResponder()
        }
    }
}

/// The built-in mail origin's settings.
public struct MailServerSettings: Sendable, Hashable {
    /// The text after `220` in the greeting.
    public var banner: String
    /// The name it gives in replies to HELO/EHLO.
    public var hostname: String
    public var checks: [MailCheck]
    /// The DNS server its reverse lookups go to (the fleet's); needed when there are checks.
    public var resolver: Endpoint?

    public init(banner: String, hostname: String, checks: [MailCheck] = [], resolver: Endpoint? = nil) {
        self.banner = banner
        self.hostname = hostname
        self.checks = checks
        self.resolver = resolver
    }
}

/// Writes back what it reads; on end of input, finishes writing and closes its output.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // Output is shut once every byte queued before it has gone: shutting it at once
            // would drop what a slow peer had not yet taken.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                bound.value.close(mode: .output, promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The fault a TCP origin is in, and its open connections (to apply a new fault to).
private final class FaultState: Sendable {
    private let state = Mutex<(fault: TCPOrigin.Fault, open: [ObjectIdentifier: any Channel])>((.none, [:]))

    /// Tracks a new connection until it closes; the fault it starts in.
    func accept(_ channel: any Channel) -> TCPOrigin.Fault {
        let key = ObjectIdentifier(channel)
        channel.closeFuture.whenComplete { _ in self.state.withLock { _ = $0.open.removeValue(forKey: key) } }
        return state.withLock { state in
            state.open[key] = channel
            return state.fault
        }
    }

    var current: TCPOrigin.Fault { state.withLock { $0.fault } }

    /// Sets the fault; the connections open now.
    func set(_ fault: TCPOrigin.Fault) -> [any Channel] {
        state.withLock { state in
            state.fault = fault
            return Array(state.open.values)
        }
    }
}
