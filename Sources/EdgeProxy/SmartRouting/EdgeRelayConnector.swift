import EdgeModel
import NIOCore

/// Reaches the origin through other edge nodes: a warm connection to the first, the relay
/// header naming the rest, the origin and the true client, then the client's bytes behind it
/// without waiting (the exit edge holds them until its origin leg is open).
struct EdgeRelayConnector: OriginConnector {
    let via: [String]
    let router: SmartRouter

    func connect(_ request: OriginRequest, leg: NIOLoopBound<[any ChannelHandler]>, on loop: any EventLoop) -> EventLoopFuture<any Channel>
    {
        router.pool.take(via[0], on: loop).flatMapThrowing { channel in
            try channel.pipeline.syncOperations.addHandlers(leg.value)
            var header = channel.allocator.buffer(capacity: 192)
            header.writeRelayHeader(
                RelayHeader(
                    app: request.service.app.id, client: request.client, edge: request.edge, origin: request.origin,
                    via: Array(via.dropFirst())))
            channel.writeAndFlush(header, promise: nil)
            return channel
        }
    }
}
