import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import NIOSSL

/// Carries out the decisions of `TCPSessionStateMachine` for one client connection: asks the
/// access rules and the origin pool, opens the origin leg through the application's connector
/// (straight, or through other edges), then joins the two channels.
final class TCPSessionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let service: ApplicationService
    private let relay: RelayHandler
    private let record: ConnectionRecord
    /// In the pipeline for edge TLS: holds the ClientHello until the edge answers it.
    private let helloReader: ClientHelloReader?
    private var machine: TCPSessionStateMachine
    private var context: ChannelHandlerContext?
    private var client = Endpoint(.v4(0), 0)
    private var edge = Endpoint(.v4(0), 0)
    private var started = NIODeadline.now()
    private var connector: any OriginConnector = DirectConnector()
    /// The origin leg once open, and how long it took, while the client's handshake finishes.
    private var origin: (relay: RelayHandler, rtt: TimeAmount)?

    init(service: ApplicationService, relay: RelayHandler, record: ConnectionRecord, helloReader: ClientHelloReader? = nil) {
        self.service = service
        self.relay = relay
        self.record = record
        self.helloReader = helloReader
        machine = TCPSessionStateMachine(edgeTLS: service.app.tls != .off, http: service.app.trafficType != .direct)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let channel = context.channel
        guard let client = channel.remoteAddress.flatMap(Endpoint.init), let edge = channel.localAddress.flatMap(Endpoint.init) else {
            context.close(promise: nil)
            return
        }
        self.client = client
        self.edge = edge
        record.start(client: client, edge: edge)
        let decision = service.accessDecision(for: client.address)
        var unusable: TCPSessionStateMachine.Failure?
        if case .failure(let error) = service.tls {
            unusable = .init(status: .tlsConfiguration, message: "application TLS unusable: \(error)")
        }
        perform(
            machine.accepted(
                allowed: decision?.allowed ?? true, rule: decision?.rule.map { "\($0.action.rawValue) \($0.target)" }, tlsUnusable: unusable
            ))
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    private func perform(_ action: TCPSessionStateMachine.Action) {
        guard let context else { return }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        switch action {
        case .none, .closeOrigin:
            break
        case .readHello:
            guard let helloReader, let readerContext = try? context.pipeline.syncOperations.context(handler: helloReader) else {
                perform(machine.helloFailed(.init(status: .clientHandshakeFailed, message: "no ClientHello reader")))
                return
            }
            helloReader.start(context: readerContext) { result in
                let handler = this.value
                switch result {
                case .success(let hello): handler.perform(handler.machine.helloRead(hello))
                case .failure(let malformed):
                    handler.perform(handler.machine.helloFailed(.init(status: .clientHandshakeFailed, message: "client: \(malformed)")))
                }
            }
        case .resolve:
            service.origins.candidates(edgePort: edge.port, on: context.eventLoop).whenComplete { result in
                let handler = this.value
                switch result {
                case .success(let endpoints): handler.perform(handler.machine.resolved(endpoints))
                case .failure(let error):
                    let status = (error as? OriginResolutionError)?.status ?? .resolveFailed
                    handler.perform(handler.machine.resolveFailed(.init(status: status, message: "\(error)")))
                }
            }
        case .connect(let origin):
            connect(to: origin, through: securing(service.connector(towards: origin)), context: context)
        case .connectDirect(let origin):
            connect(to: origin, through: securing(DirectConnector()), context: context)
        case .secureClient(let origin):
            secureClient(context: context, forHTTP: origin == nil)
        case .serveHTTP:
            serveHTTP(context: context)
        case .join(let originEndpoint):
            guard let origin else { return }
            record.connected(origin: originEndpoint, rtt: origin.rtt, via: connector.via)
            RelayHandler.join(relay, origin.relay)
        case .close(let outcome):
            switch outcome {
            case .filtered(let rule): record.filtered(rule: rule)
            case .resolveFailed(let failure): record.resolveFailed(status: failure.status, message: failure.message)
            case .originFailed(let failure):
                record.originFailed(status: failure.status, message: failure.message, origin: nil, via: connector.via)
            case .tlsFailed(let failure, let origin):
                record.tlsFailed(status: failure.status, message: failure.message, origin: origin)
            }
            context.close(promise: nil)
        }
    }

    /// The connector wrapped in TLS for full and strict: SNI is the configured origin name, else
    /// the client's, else the `origin_dns` name; ALPN is what the client offered.
    private func securing(_ connector: any OriginConnector) -> any OriginConnector {
        guard case .success(let tls) = service.tls, tls.mode == .full || tls.mode == .strict else { return connector }
        var name = tls.settings.originServerName ?? machine.hello?.serverName
        if name == nil, case .dns(let dns) = service.app.origin { name = dns.name }
        return TLSOriginConnector(
            inner: connector, tls: tls, serverName: name, applicationProtocols: machine.hello?.applicationProtocols ?? [])
    }

    private func connect(to origin: Endpoint, through connector: any OriginConnector, context: ChannelHandlerContext) {
        started = .now()
        self.connector = connector
        let record = self.record
        let relay = RelayHandler(
            onRead: { record.addOut($0) }, onError: { record.failed($0, onOriginSide: true) }, onHeld: { record.held() })
        let originRelay = NIOLoopBound(relay, eventLoop: context.eventLoop)
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let clientChannel = context.channel
        connector.connect(
            OriginRequest(service: service, client: client, edge: edge, origin: origin),
            leg: NIOLoopBound([relay], eventLoop: context.eventLoop), on: context.eventLoop
        )
        .whenComplete { result in
            let handler = this.value
            switch result {
            case .failure(let error as TLSOriginConnector.HandshakeFailure):
                handler.perform(handler.machine.originHandshakeFailed(.init(status: error.status, message: error.description)))
            case .failure(let error):
                let relays = handler.connector.via
                if let first = relays.first { handler.service.smartRouting?.relayFailed(first) }
                let failure = TCPSessionStateMachine.Failure(status: StatusCode(connectError: error), message: "\(error)")
                handler.perform(handler.machine.connectFailed(failure, relayed: !relays.isEmpty))
            case .success(let originChannel):
                let action = handler.machine.connected()
                guard action != .closeOrigin, action != .none else {
                    originChannel.close(promise: nil)
                    return
                }
                handler.origin = (originRelay.value, NIODeadline.now() - handler.started)
                clientChannel.closeFuture.whenComplete { _ in originChannel.close(promise: nil) }
                handler.perform(action)
            }
        }
    }

    /// Answers the client's handshake with the held ClientHello, offering the protocol the
    /// origin chose (none for a plain origin), or for HTTP http/1.1 when the client offers it.
    private func secureClient(context: ChannelHandlerContext, forHTTP: Bool) {
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let handshake = context.eventLoop.makePromise(of: String?.self)
        // Listen first: a hello the TLS library refuses fails the handshake while it is handed over.
        handshake.futureResult.whenComplete { result in
            let handler = this.value
            switch result {
            case .success: handler.perform(handler.machine.clientSecured())
            case .failure(let error):
                handler.perform(
                    handler.machine.clientHandshakeFailed(
                        .init(status: .clientHandshakeFailed, message: "client: \(handshakeReason(error))")))
            }
        }
        do {
            guard case .success(let tls) = service.tls, let helloReader else { throw HandshakeClosed() }
            let negotiated =
                forHTTP
                ? (machine.hello?.applicationProtocols.contains("http/1.1") == true ? "http/1.1" : nil)
                : (connector as? TLSOriginConnector)?.negotiatedProtocol.withLockedValue { $0 }
            let operations = context.pipeline.syncOperations
            let server = NIOSSLServerHandler(context: try tls.serverContext(applicationProtocol: negotiated))
            try operations.addHandler(server, position: .after(helloReader))
            try HandshakeReader(promise: handshake).install(around: server, in: operations)
            operations.removeHandler(helloReader, promise: nil)
        } catch {
            handshake.fail(error)
        }
    }

    /// The connection becomes HTTP: the relay leaves, an HTTP server codec and a forwarder take
    /// its place, and each request reaches the origin through `openOrigin`.
    private func serveHTTP(context: ChannelHandlerContext) {
        let service = self.service
        let record = self.record
        let client = self.client
        let edge = self.edge
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let forwarder = HTTPForwarder(
            client: client.address, scheme: service.app.trafficType == .https ? "https" : "http",
            openOrigin: { handlers in this.value.openOrigin(handlers) },
            record: { exchange, origin, message in
                let status = exchange.status ?? 502
                service.event(
                    .request, client: client, edge: edge, origin: origin, bytesIn: UInt64(exchange.bytesIn),
                    bytesOut: UInt64(exchange.bytesOut),
                    duration: .now() - exchange.started, status: status >= 500 ? .originRefused : .ok,
                    message: exchange.answer != nil && exchange.method == "-"
                        ? message : "\(exchange.method) \(exchange.uri)" + (message.map { ": \($0)" } ?? ""), httpStatus: status)
            })
        do {
            let operations = context.pipeline.syncOperations
            try operations.addHandlers(
                [forwarder], position: .before(relay))
            operations.removeHandler(relay, promise: nil)
        } catch {
            record.originFailed(status: .originRefused, message: "cannot serve HTTP: \(error)", origin: nil, via: [])
            context.close(promise: nil)
            return
        }
        // The relay held the last read; nothing else asks for one.
        context.read()
    }

    /// An origin leg for one HTTP connection: the application's candidates in turn, through its
    /// connector (TLS for full and strict, with the client's SNI).
    private func openOrigin(_ handlers: @escaping () -> [any ChannelHandler]) -> EventLoopFuture<(any Channel, Endpoint)> {
        guard let context else { return MultiThreadedEventLoopGroup.singleton.next().makeFailedFuture(ChannelError.ioOnClosedChannel) }
        let loop = context.eventLoop
        let this = NIOLoopBound(self, eventLoop: loop)
        let make = NIOLoopBound(handlers, eventLoop: loop)
        return service.origins.candidates(edgePort: edge.port, on: loop).flatMap { candidates in
            this.value.attempt(candidates[...], handlers: make.value, lastError: nil, on: loop)
        }
    }

    private func attempt(
        _ remaining: ArraySlice<Endpoint>, handlers: @escaping () -> [any ChannelHandler], lastError: (any Error)?, on loop: any EventLoop
    ) -> EventLoopFuture<(any Channel, Endpoint)> {
        guard let origin = remaining.first else { return loop.makeFailedFuture(lastError ?? ChannelError.ioOnClosedChannel) }
        let this = NIOLoopBound(self, eventLoop: loop)
        let make = NIOLoopBound(handlers, eventLoop: loop)
        return securing(service.connector(towards: origin))
            .connect(
                OriginRequest(service: service, client: client, edge: edge, origin: origin), leg: NIOLoopBound(handlers(), eventLoop: loop),
                on: loop
            )
            .map { ($0, origin) }
            .flatMapError { error in
                if error is TLSOriginConnector.HandshakeFailure { return loop.makeFailedFuture(error) }
                return this.value.attempt(remaining.dropFirst(), handlers: make.value, lastError: error, on: loop)
            }
    }
}

extension StatusCode {
    /// The status for a failed connect to an origin.
    init(connectError: (any Error)?) {
        switch connectError {
        case let error as IOError where error.errnoCode == ECONNREFUSED: self = .originRefused
        case let error as IOError where [EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode): self = .originUnreachable
        case let error as NIOConnectionError where error.dnsAAAAError == nil && error.dnsAError == nil:
            self.init(connectError: error.connectionErrors.first?.error)
        case is ChannelError: self = .originTimeout
        default: self = .originRefused
        }
    }
}
