import NIOCore

/// Closes a client connection on which nothing has moved for too long: no byte either way for
/// `idle`, or, once either side has half-closed, for `halfClosed` (the other side stopped
/// reading or answering). First in the client's pipeline, so it sees every byte both ways. Its
/// timer is a scheduled callback to the watcher itself, which costs no allocation per arming.
final class IdleWatcher: ChannelDuplexHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idle: TimeAmount
    private let halfClosed: TimeAmount
    /// Told why, just before the connection is closed.
    private let onTimeout: (String) -> Void
    private var lastActivity = NIODeadline.now()
    private var isHalfClosed = false
    private var timer: NIOScheduledCallback?
    private var context: ChannelHandlerContext?

    init(idle: TimeAmount, halfClosed: TimeAmount, onTimeout: @escaping (String) -> Void) {
        self.idle = idle
        self.halfClosed = halfClosed
        self.onTimeout = onTimeout
    }

    private var limit: TimeAmount { isHalfClosed ? min(idle, halfClosed) : idle }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastActivity = .now()
        arm(context, at: lastActivity + limit)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = .now()
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { halfClose(context) }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output { halfClose(context) }
        context.close(mode: mode, promise: promise)
    }

    private func halfClose(_ context: ChannelHandlerContext) {
        guard !isHalfClosed else { return }
        isHalfClosed = true
        lastActivity = .now()
        arm(context, at: lastActivity + limit)
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer?.cancel()
        // Fails only on a loop that is shutting down, whose channels close anyway.
        timer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        guard let context else { return }
        check(context)
    }

    private func check(_ context: ChannelHandlerContext) {
        let due = lastActivity + limit
        guard NIODeadline.now() >= due else { return arm(context, at: due) }
        let seconds = Double(limit.nanoseconds) / 1e9
        onTimeout(
            isHalfClosed
                ? "half-closed and nothing moved for \(seconds) s (tcp_half_closed_timeout)"
                : "idle for \(seconds) s (tcp_idle_timeout)")
        context.close(promise: nil)
    }
}
