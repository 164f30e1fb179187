import EdgeModel
import NIOCore

/// The first handler of a connection another edge relays through this one: reads the relay
/// header, checks it comes from a peer and names an application with smart routing and one of
/// its origins, then opens the next leg (the next relay, or the origin with the PROXY header)
/// and joins the two. Bytes behind the header wait in the relay until then.
final class RelayHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let services: [String: ApplicationService]
    private let router: SmartRouter
    /// How long a header may take once its first byte came (a warm connection waits for its
    /// first byte as long as it likes: only peers may hold one).
    private let headerTimeout: TimeAmount
    private var buffer: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(services: [String: ApplicationService], router: SmartRouter, headerTimeout: TimeAmount = .seconds(10)) {
        self.services = services
        self.router = router
        self.headerTimeout = headerTimeout
    }

    /// Only the fleet's edges may connect here at all.
    func channelActive(context: ChannelHandlerContext) {
        guard let peer = context.channel.remoteAddress.flatMap(Endpoint.init)?.address.unmapped,
            router.configuration.peers.values.contains(peer)
        else { return refuse(context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil {
            buffer = incoming
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(in: headerTimeout) {
                let (handler, context) = bound.value
                guard handler.buffer != nil else { return }
                handler.router.count { $0.relayHeaderTimeouts += 1 }
                handler.refuse(context)
            }
        } else {
            buffer!.writeBuffer(&incoming)
        }
        let header: RelayHeader?
        do {
            header = try buffer!.readRelayHeader()
        } catch {
            refuse(context)
            return
        }
        guard let header else { return }
        timer?.cancel()
        guard let service = services[header.app], let router = service.smartRouting, permits(header, service: service, context: context)
        else {
            refuse(context)
            return
        }
        router.count { $0.relayedIn += 1 }
        let inbound = RelayHandler(onRead: { _ in }, onError: { _ in })
        let outbound = NIOLoopBound(RelayHandler(onRead: { _ in }, onError: { _ in }), eventLoop: context.eventLoop)
        let rest = buffer!
        buffer = nil
        do {
            try context.pipeline.syncOperations.addHandler(inbound, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        let connector: any OriginConnector =
            header.via.isEmpty ? DirectConnector() : EdgeRelayConnector(via: header.via, router: router)
        let channel = context.channel
        let boundInbound = NIOLoopBound(inbound, eventLoop: context.eventLoop)
        connector.connect(
            OriginRequest(service: service, client: header.client, edge: header.edge, origin: header.origin),
            leg: NIOLoopBound([outbound.value], eventLoop: context.eventLoop),
            on: context.eventLoop
        ).whenComplete { result in
            switch result {
            case .success(let next):
                guard channel.isActive else { return next.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in next.close(promise: nil) }
                RelayHandler.join(boundInbound.value, outbound.value)
            case .failure:
                channel.close(promise: nil)
            }
        }
    }

    /// Only edges of the fleet relay, only for smart-routed applications, only to their origins.
    private func permits(_ header: RelayHeader, service: ApplicationService, context: ChannelHandlerContext) -> Bool {
        guard let peer = context.channel.remoteAddress.flatMap(Endpoint.init)?.address.unmapped,
            router.configuration.peers.values.contains(peer)
        else { return false }
        return service.permitsRelay(to: header.origin)
    }

    private func refuse(_ context: ChannelHandlerContext) {
        router.count { $0.relayRefused += 1 }
        buffer = nil
        timer?.cancel()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        buffer = nil
        timer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
