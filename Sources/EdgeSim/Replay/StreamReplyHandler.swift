import NIOCore

/// Feeds a TCP flow's replies to its log; the end of input or of the connection ends it.
final class StreamReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let log: ReplyLog

    init(log: ReplyLog) {
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        log.add(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { log.end() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        log.end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        log.end(error)
        context.close(promise: nil)
    }
}
