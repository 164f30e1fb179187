import EdgeModel
import NIOCore

/// The receiving side of a TCP PROXY header: reads exactly one v1 or v2 header (the one it is
/// told to expect; it never guesses), reports it, then passes every later byte on untouched.
/// A malformed header, or none within the timeout, closes the connection before anything is
/// processed.
final class ProxyHeaderReceiver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Version: Sendable {
        case v1
        case v2
    }

    private let version: Version
    private let onHeader: (ProxyHeader) -> Void
    /// A sender that has not completed its header by then is closed.
    private let timeout: TimeAmount
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(version: Version, timeout: TimeAmount = .seconds(10), onHeader: @escaping (ProxyHeader) -> Void) {
        self.version = version
        self.timeout = timeout
        self.onHeader = onHeader
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var held = buffered {
            held.writeBuffer(&incoming)
            incoming = held
        }
        do {
            let header = try version == .v1 ? incoming.readProxyV1() : incoming.readProxyV2()
            guard let header else {
                let limit = version == .v1 ? ProxyProtocolV1.maxLength : ProxyProtocolV2.maxLength
                if incoming.readableBytes > limit { throw ProxyProtocolError("no complete header in \(limit) bytes") }
                buffered = incoming
                return
            }
            buffered = nil
            onHeader(header)
            context.fireUserInboundEventTriggered(ProxyHeaderReceived(header: header))
            if incoming.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(incoming)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}

/// Sent up the pipeline once the PROXY header is read, before the bytes after it.
struct ProxyHeaderReceived {
    var header: ProxyHeader
}
