import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix

/// Runs one client TCP connection: checks access rules, connects to the origin (with failover),
/// writes the PROXY header in one write before any payload, then joins the two channels.
final class TCPSessionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let service: ApplicationService
    private let relay: RelayHandler
    private let record: ConnectionRecord

    init(service: ApplicationService, relay: RelayHandler, record: ConnectionRecord) {
        self.service = service
        self.relay = relay
        self.record = record
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        let channel = context.channel
        guard let client = channel.remoteAddress.flatMap(Endpoint.init), let edge = channel.localAddress.flatMap(Endpoint.init) else {
            context.close(promise: nil)
            return
        }
        record.start(client: client, edge: edge)
        if let decision = service.accessDecision(for: client.address), !decision.allowed {
            record.filtered(rule: decision.rule)
            context.close(promise: nil)
            return
        }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        service.origins.candidates(edgePort: edge.port, on: context.eventLoop).whenComplete { result in
            switch result {
            case .success(let endpoints):
                this.value.connect(to: endpoints[...], client: client, edge: edge, clientChannel: channel, lastError: nil)
            case .failure(let error):
                let resolution = error as? OriginResolutionError
                this.value.record.resolveFailed(status: resolution?.status ?? .resolveFailed, message: "\(error)")
                channel.close(promise: nil)
            }
        }
    }

    /// Tries each origin in turn; the client is closed with an `originError` when none answers.
    private func connect(
        to endpoints: ArraySlice<Endpoint>, client: Endpoint, edge: Endpoint, clientChannel: any Channel, lastError: (any Error)?
    ) {
        guard clientChannel.isActive else { return }
        guard let origin = endpoints.first else {
            record.originFailed(status: StatusCode(connectError: lastError), message: lastError.map { "\($0)" } ?? "no origin", origin: nil)
            clientChannel.close(promise: nil)
            return
        }
        let started = NIODeadline.now()
        let record = self.record
        let originRelay = NIOLoopBound(
            RelayHandler(onRead: { record.addOut($0) }, onError: { record.failed($0, onOriginSide: true) }),
            eventLoop: clientChannel.eventLoop)
        let this = NIOLoopBound(self, eventLoop: clientChannel.eventLoop)
        var bootstrap = ClientBootstrap(group: clientChannel.eventLoop)
        if let source = service.configuration.sourceAddress(towards: origin) { bootstrap = bootstrap.bind(to: source) }
        bootstrap
            .connectTimeout(service.configuration.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: service.configuration.writeBufferWaterMark)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(originRelay.value) }
            }
            .connect(to: origin.socketAddress)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    this.value.connect(
                        to: endpoints.dropFirst(), client: client, edge: edge, clientChannel: clientChannel, lastError: error)
                case .success(let originChannel):
                    let handler = this.value
                    handler.record.connected(origin: origin, rtt: NIODeadline.now() - started, originChannel: originChannel)
                    guard clientChannel.isActive else {
                        originChannel.close(promise: nil)
                        return
                    }
                    if let header = handler.service.proxyHeader(client: client, edge: edge, allocator: originChannel.allocator) {
                        originChannel.writeAndFlush(header, promise: nil)
                    }
                    clientChannel.closeFuture.whenComplete { _ in originChannel.close(promise: nil) }
                    RelayHandler.join(handler.relay, originRelay.value)
                }
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
