import EdgeModel
import NIOCore

/// One side of a relayed TCP connection: what it reads crosses the link (`LinkSchedule`) and is
/// written to the other side when the link delivers it. End of input and close cross too.
final class DelayedForwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var schedule: LinkSchedule
    private let currentShape: () -> LinkShape?
    private var peer: (any Channel)?
    /// Bytes and end of input that arrive before the other side is connected.
    private var early: [ByteBuffer] = []
    private var earlyEnd = false
    private var ended = false

    init(shape: LinkShape, currentShape: @escaping () -> LinkShape?) {
        schedule = LinkSchedule(shape: shape)
        self.currentShape = currentShape
    }

    func attach(to peer: any Channel, context: ChannelHandlerContext) {
        self.peer = peer
        for buffer in early { forward(buffer, context: context) }
        early = []
        if earlyEnd { endOutput(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard peer != nil else { return early.append(buffer) }
        forward(buffer, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if peer == nil { earlyEnd = true } else { endOutput(context: context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The peer closes once everything already on the link has arrived.
        if let peer, case .at(let deadline) = schedule.schedule(bytes: 0, now: Self.now, reliable: true) {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { peer.close(promise: nil) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func forward(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard let peer else { return }
        guard let shape = currentShape() else {
            // The path went away under the connection.
            context.close(promise: nil)
            peer.close(promise: nil)
            return
        }
        schedule.shape = shape
        if case .at(let deadline) = schedule.schedule(bytes: buffer.readableBytes, now: Self.now, reliable: true) {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                peer.writeAndFlush(buffer, promise: nil)
            }
        }
    }

    private func endOutput(context: ChannelHandlerContext) {
        guard !ended, let peer else { return }
        ended = true
        if case .at(let deadline) = schedule.schedule(bytes: 0, now: Self.now, reliable: true) {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                peer.close(mode: .output, promise: nil)
            }
        }
    }

    static var now: UInt64 { NIODeadline.now().uptimeNanoseconds }
}
