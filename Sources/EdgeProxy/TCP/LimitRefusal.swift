import EdgeModel
import NIOCore
import NIOPosix

/// The whole pipeline of a connection over a limit: records the refusal with the client's
/// address and resets the connection (SO_LINGER 0), so no state is held for it.
final class LimitRefusal: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let record: ConnectionRecord
    private let reason: String

    init(record: ConnectionRecord, reason: String) {
        self.record = record
        self.reason = reason
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        if let client = channel.remoteAddress.flatMap(Endpoint.init), let edge = channel.localAddress.flatMap(Endpoint.init) {
            record.limited(reason, client: client, edge: edge)
        }
        guard let options = channel as? any SocketOptionProvider else { return context.close(promise: nil) }
        options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
