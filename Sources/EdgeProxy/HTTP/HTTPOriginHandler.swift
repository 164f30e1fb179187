import NIOCore

/// The origin leg's end of an HTTP forwarder: the origin's bytes and the connection's end go
/// back to it.
final class HTTPOriginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let forwarder: NIOLoopBound<HTTPForwarder>

    init(forwarder: NIOLoopBound<HTTPForwarder>) {
        self.forwarder = forwarder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        forwarder.value.originRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        forwarder.value.originReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        forwarder.value.originGone()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
