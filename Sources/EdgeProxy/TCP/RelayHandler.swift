import NIOCore

/// One side of a TCP relay. Two of these, partnered, move bytes between the client and origin
/// channels: reads on one side wait while the other side cannot take more (back-pressure), and
/// a half-close on one side becomes a half-close on the other.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// The other side's input ended cleanly, so our output shuts once its queue has drained.
    private var outputEnding = false
    /// This side's input ended (end of file), or it failed (reset, error).
    private var inputEnded = false
    private var failed = false
    /// What arrived before the partner existed. Holding reads does not stop NIO from draining a
    /// socket whose peer already sent its FIN, so data and end of input can come early.
    private var early: [NIOAny] = []
    private var earlyEndOfInput = false
    /// Called with the size of every read on this side.
    private let onRead: (Int) -> Void
    /// Called with an error on this side, before the side is closed.
    private let onError: (any Error) -> Void
    /// Called each time a read on this side waits because the other side holds its limit of
    /// unsent bytes.
    private let onHeld: () -> Void

    init(onRead: @escaping (Int) -> Void, onError: @escaping (any Error) -> Void, onHeld: @escaping () -> Void = {}) {
        self.onRead = onRead
        self.onError = onError
        self.onHeld = onHeld
    }

    /// Joins two handlers on the same event loop; reads held until now may go ahead.
    static func join(_ a: RelayHandler, _ b: RelayHandler) {
        a.partner = b
        b.partner = a
        a.deliverEarly()
        b.deliverEarly()
        a.releaseHeldRead()
        b.releaseHeldRead()
    }

    private func deliverEarly() {
        guard let partner else { return }
        if !early.isEmpty {
            for data in early { partner.partnerWrite(data) }
            early.removeAll()
            partner.partnerFlush()
        }
        if earlyEndOfInput {
            earlyEndOfInput = false
            partner.partnerEndOfInput()
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: Calls from the partner

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    /// Shuts our output once every byte written before it has gone: writes complete in order,
    /// and a full close (when our input is shut too) would otherwise drop what is still queued.
    private func partnerEndOfInput() {
        guard let context else { return }
        outputEnding = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            bound.value.close(mode: .output, promise: nil)
        }
    }

    /// The other side closed. After a clean end of its input our output is already being shut
    /// once what is queued has gone; closing now would drop those bytes. Otherwise (a reset, an
    /// error) this side closes at once.
    private func partnerClosed() {
        guard !outputEnding else { return }
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        releaseHeldRead()
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func releaseHeldRead() {
        guard pendingRead, partner?.isWritable == true else { return }
        pendingRead = false
        context?.read()
    }

    // MARK: Events on this side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onRead(unwrapInboundIn(data).readableBytes)
        guard let partner else {
            early.append(data)
            return
        }
        partner.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A channel whose output was already shut closes at end of input without saying
        // `inputClosed` first: a clean end still lets the other side send what it holds.
        if !failed, !inputEnded, let partner {
            inputEnded = true
            partner.partnerFlush()
            partner.partnerEndOfInput()
        }
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            if let partner {
                partner.partnerFlush()
                partner.partnerEndOfInput()
            } else {
                earlyEndOfInput = true
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        onError(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable == true {
            context.read()
        } else {
            if !pendingRead, partner != nil { onHeld() }
            pendingRead = true
        }
    }
}
