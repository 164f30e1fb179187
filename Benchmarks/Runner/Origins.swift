import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix

/// Counts what it receives and, at end of input, answers with the count (8 bytes) and closes.
final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received: UInt64 = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += UInt64(unwrapInboundIn(data).readableBytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            var reply = context.channel.allocator.buffer(capacity: 8)
            reply.writeInteger(received)
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

enum BenchOrigins {
    static func sink(at address: String) async throws -> (any Channel, Int) {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SinkHandler()) }
            }
            .bind(host: address, port: 0).get()
        return (channel, channel.localAddress!.port!)
    }
}
