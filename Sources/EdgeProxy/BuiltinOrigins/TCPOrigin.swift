import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// A built-in TCP origin: an echo server that honours half-close, an SMTP-like server that
/// greets with a banner, or a small HTTP server. When told to expect a PROXY header it reads it
/// first and records the client address it names.
public final class TCPOrigin: Sendable {
    public enum Responder: Sendable, Hashable {
        case echo
        /// A mail server taking one message per transaction, checking clients first.
        case smtp(MailServerSettings)
        /// One `200 OK` response naming the client, then close.
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

    private let expect: ProxyProtocolMode
    private let responder: Responder
    private let seen = Recorder<Seen>()
    private let mail = Recorder<MailOutcome>()
    private let channels = OpenChannels()
    private let group: any EventLoopGroup

    public init(
        expecting proxyProtocol: ProxyProtocolMode = .off, responder: Responder = .echo,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        expect = proxyProtocol
        self.responder = responder
        self.group = group
    }

    /// Connections seen so far, in the order their headers (or first bytes) arrived.
    public var connections: [Seen] { seen.all }

    /// How each mail transaction ended (smtp only), in order.
    public var mailOutcomes: [MailOutcome] { mail.all }

    /// Listens on `address` at each port (0 for any free port); returns the bound endpoints.
    @discardableResult
    public func start(address: IPAddress, ports: [UInt16] = [0]) async throws -> [Endpoint] {
        var bound: [Endpoint] = []
        for port in ports {
            let channel = try await group.onLoop { [expect, seen, responder, mail, group] loop in
                ServerBootstrap(group: loop)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { [expect, seen, responder, mail, group] channel in
                        channel.eventLoop.makeCompletedFuture {
                            let peer = channel.remoteAddress.flatMap(Endpoint.init) ?? Endpoint(.v4(0), 0)
                            let localPort = UInt16(channel.localAddress?.port ?? 0)
                            let handler = Self.handler(responder, awaitsHeader: expect == .v1 || expect == .v2, group: group, mail: mail)
                            let handlers: [any ChannelHandler]
                            switch expect {
                            case .v1, .v2:
                                let receiver = ProxyHeaderReceiver(version: expect == .v1 ? .v1 : .v2) { header in
                                    seen.append(Seen(peer: peer, localPort: localPort, header: header))
                                }
                                handlers = [receiver, handler]
                            default:
                                seen.append(Seen(peer: peer, localPort: localPort, header: nil))
                                handlers = [handler]
                            }
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
        await channels.closeAll()
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
            context.close(mode: .output, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
