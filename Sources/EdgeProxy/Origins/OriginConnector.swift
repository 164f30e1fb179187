import EdgeModel
import NIOCore
import NIOPosix

/// One connection's way to its origin, as a connector needs it.
struct OriginRequest {
    var service: ApplicationService
    var client: Endpoint
    var edge: Endpoint
    var origin: Endpoint
}

/// A way to reach an origin: straight from this edge, or through other edge nodes. It opens
/// the origin leg with `leg` in its pipeline (a relay, or an HTTP client) and writes whatever
/// must come before the client's bytes (a PROXY header, or a relay header for the next edge).
protocol OriginConnector: Sendable {
    /// Edge nodes the leg goes through; empty for direct.
    var via: [String] { get }
    func connect(_ request: OriginRequest, leg: NIOLoopBound<[any ChannelHandler]>, on loop: any EventLoop) -> EventLoopFuture<any Channel>
}

/// Straight to the origin over the network, as the internet routes it.
struct DirectConnector: OriginConnector {
    var via: [String] { [] }

    func connect(_ request: OriginRequest, leg: NIOLoopBound<[any ChannelHandler]>, on loop: any EventLoop) -> EventLoopFuture<any Channel>
    {
        // Sockets are made by the calling thread, so on the loop's own: in its namespace, if any.
        // (A bootstrap is a class too: the shared one is set up and used on its loop only.)
        guard loop.inEventLoop else { return loop.flatSubmit { self.connect(request, leg: leg, on: loop) } }
        let configuration = request.service.configuration
        let source = configuration.sourceAddress(towards: request.origin)
        let bootstrap = request.service.originBootstrap(on: loop, source: source)
        return
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configuration.configure(channel, noDelay: false)
                    try channel.pipeline.syncOperations.addHandlers(leg.value)
                }
            }
            .connect(to: request.origin.socketAddress)
            .map { channel in
                if let header = request.service.proxyHeader(client: request.client, edge: request.edge, allocator: channel.allocator) {
                    channel.writeAndFlush(header, promise: nil)
                }
                return channel
            }
    }
}
