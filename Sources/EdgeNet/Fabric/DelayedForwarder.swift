import EdgeModel
import NIOCore

/// One side of a relayed TCP connection: what it reads crosses the link (`LinkSchedule`) and is
/// written to the other side when the link delivers it. End of input and close cross too.
///
/// Like a real path, the link holds a bounded number of bytes: reading waits while
/// `inFlightLimit` bytes are on their way or the other side's socket is not taking more, so a
/// slow receiver slows the sender (TCP's window, end to end) instead of filling the fabric.
final class DelayedForwarder: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var schedule: LinkSchedule
    private let currentShape: () -> LinkShape?
    private var peer: (any Channel)?
    /// The forwarder of the other direction, on the peer channel (same event loop).
    private var partner: DelayedForwarder?
    private var context: ChannelHandlerContext?
    /// Bytes and end of input that arrive before the other side is connected.
    private var early: [ByteBuffer] = []
    private var earlyEnd = false
    private var ended = false
    /// Bytes read and not yet written to the peer (held early, or crossing the link).
    private var inFlight = 0
    private let inFlightLimit: Int
    private var pendingRead = false
    /// Hears each buffer read from this side as it enters the link, and nil at its end of input.
    var tap: ((ByteBuffer?) -> Void)?

    init(shape: LinkShape, inFlightLimit: Int = 256 * 1024, currentShape: @escaping () -> LinkShape?) {
        schedule = LinkSchedule(shape: shape)
        self.inFlightLimit = inFlightLimit
        self.currentShape = currentShape
    }

    /// Joins the two directions of one relayed connection.
    static func pair(_ a: DelayedForwarder, _ b: DelayedForwarder) {
        a.partner = b
        b.partner = a
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func attach(to peer: any Channel, context: ChannelHandlerContext) {
        self.peer = peer
        let held = early
        early = []
        inFlight -= held.reduce(0) { $0 + $1.readableBytes }
        for buffer in held { forward(buffer, context: context) }
        if earlyEnd { endOutput(context: context) }
        releaseHeldRead()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard peer != nil else {
            inFlight += buffer.readableBytes
            return early.append(buffer)
        }
        forward(buffer, context: context)
    }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // This side takes more again: the other direction may read.
        if context.channel.isWritable { partner?.releaseHeldRead() }
        context.fireChannelWritabilityChanged()
    }

    private var mayRead: Bool {
        inFlight < inFlightLimit && (peer?.isWritable ?? true)
    }

    private func releaseHeldRead() {
        guard pendingRead, mayRead, let context else { return }
        pendingRead = false
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if peer == nil { earlyEnd = true } else { endOutput(context: context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed without a half-close first: its output ends here too.
        tap?(nil)
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
        tap?(buffer)
        if case .at(let deadline) = schedule.schedule(bytes: buffer.readableBytes, now: Self.now, reliable: true) {
            inFlight += buffer.readableBytes
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [self] in
                inFlight -= buffer.readableBytes
                peer.writeAndFlush(buffer, promise: nil)
                releaseHeldRead()
            }
        }
    }

    private func endOutput(context: ChannelHandlerContext) {
        guard !ended, let peer else { return }
        ended = true
        tap?(nil)
        if case .at(let deadline) = schedule.schedule(bytes: 0, now: Self.now, reliable: true) {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                peer.close(mode: .output, promise: nil)
            }
        }
    }

    static var now: UInt64 { NIODeadline.now().uptimeNanoseconds }
}
