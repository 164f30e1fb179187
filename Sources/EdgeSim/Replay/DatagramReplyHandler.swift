import NIOCore

/// Feeds a UDP flow's reply datagrams to its log.
final class DatagramReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let log: ReplyLog

    init(log: ReplyLog) {
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        log.add(unwrapInboundIn(data).data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A port unreachable answer arrives as an error on the socket: the flow cannot go on.
        log.end(error)
    }
}
