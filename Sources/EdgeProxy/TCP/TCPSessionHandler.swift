import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix

/// Carries out the decisions of `TCPSessionStateMachine` for one client connection: asks the
/// access rules and the origin pool, opens the origin leg through the application's connector
/// (straight, or through other edges), then joins the two channels.
final class TCPSessionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let service: ApplicationService
    private let relay: RelayHandler
    private let record: ConnectionRecord
    private var machine = TCPSessionStateMachine()
    private var context: ChannelHandlerContext?
    private var client = Endpoint(.v4(0), 0)
    private var edge = Endpoint(.v4(0), 0)
    private var started = NIODeadline.now()
    private var connector: any OriginConnector = DirectConnector()

    init(service: ApplicationService, relay: RelayHandler, record: ConnectionRecord) {
        self.service = service
        self.relay = relay
        self.record = record
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
        perform(machine.accepted(allowed: decision?.allowed ?? true, rule: decision?.rule.map { "\($0.action.rawValue) \($0.target)" }))
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    private func perform(_ action: TCPSessionStateMachine.Action) {
        guard let context else { return }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        switch action {
        case .none, .closeOrigin, .join:
            break
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
            connect(to: origin, through: service.connector(towards: origin), context: context)
        case .connectDirect(let origin):
            connect(to: origin, through: DirectConnector(), context: context)
        case .close(let outcome):
            switch outcome {
            case .filtered(let rule): record.filtered(rule: rule)
            case .resolveFailed(let failure): record.resolveFailed(status: failure.status, message: failure.message)
            case .originFailed(let failure):
                record.originFailed(status: failure.status, message: failure.message, origin: nil, via: connector.via)
            }
            context.close(promise: nil)
        }
    }

    private func connect(to origin: Endpoint, through connector: any OriginConnector, context: ChannelHandlerContext) {
        started = .now()
        self.connector = connector
        let record = self.record
        let originRelay = NIOLoopBound(
            RelayHandler(onRead: { record.addOut($0) }, onError: { record.failed($0, onOriginSide: true) }, onHeld: { record.held() }),
            eventLoop: context.eventLoop)
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let clientChannel = context.channel
        connector.connect(
            OriginRequest(service: service, client: client, edge: edge, origin: origin), relay: originRelay, on: context.eventLoop
        )
        .whenComplete { result in
            let handler = this.value
            switch result {
            case .failure(let error):
                let relays = handler.connector.via
                if let first = relays.first { handler.service.smartRouting?.relayFailed(first) }
                let failure = TCPSessionStateMachine.Failure(status: StatusCode(connectError: error), message: "\(error)")
                handler.perform(handler.machine.connectFailed(failure, relayed: !relays.isEmpty))
            case .success(let originChannel):
                switch handler.machine.connected() {
                case .join(let origin):
                    handler.record.connected(origin: origin, rtt: NIODeadline.now() - handler.started, via: handler.connector.via)
                    clientChannel.closeFuture.whenComplete { _ in originChannel.close(promise: nil) }
                    RelayHandler.join(handler.relay, originRelay.value)
                default:
                    originChannel.close(promise: nil)
                }
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
