import EdgeModel
import NIOCore

/// Carries out `HTTPForwardingStateMachine` for one client connection of an http or https
/// application: the client's bytes in, responses out, one kept-alive origin connection opened
/// through `openOrigin` (which resolves and connects, in TLS for full and strict) with an
/// `HTTPOriginHandler` at the end of its pipeline. Writes each way are flushed once per read.
final class HTTPForwarder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Opens the origin leg with handlers made by the function given (afresh for each address
    /// tried); the endpoint it reached, or why not (502/504).
    typealias OpenOrigin = (@escaping () -> [any ChannelHandler]) -> EventLoopFuture<(any Channel, Endpoint)>

    private var machine: HTTPForwardingStateMachine
    private let openOrigin: OpenOrigin
    private let record: (HTTPForwardingStateMachine.Exchange, Endpoint?, String?) -> Void
    private var context: ChannelHandlerContext?
    private var originChannel: (any Channel)?
    private var originEndpoint: Endpoint?
    /// Writes made since the last flush, each way.
    private var clientUnflushed = false
    private var originUnflushed = false
    /// Inside a read from the origin: the client is flushed when it completes.
    private var readingOrigin = false
    /// Bytes for the client not yet written, joined while small.
    private var toClient: ByteBuffer?
    static let joinLimit = 16_384

    init(
        client: IPAddress, scheme: String, openOrigin: @escaping OpenOrigin,
        record: @escaping (HTTPForwardingStateMachine.Exchange, Endpoint?, String?) -> Void
    ) {
        machine = HTTPForwardingStateMachine(client: client, scheme: scheme)
        self.openOrigin = openOrigin
        self.record = record
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.clientBytes(unwrapInboundIn(data), now: .now()))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOrigin()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    // MARK: From the origin leg

    func originRead(_ bytes: ByteBuffer) {
        readingOrigin = true
        perform(machine.originBytes(bytes))
    }

    func originReadComplete() {
        readingOrigin = false
        flushClient()
    }

    func originGone() {
        originChannel = nil
        readingOrigin = false
        perform(machine.originClosed())
    }

    // MARK: Carrying out

    private func perform(_ actions: [HTTPForwardingStateMachine.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .connectOrigin:
                connect(context: context)
            case .sendToOrigin(let bytes):
                originChannel?.write(bytes, promise: nil)
                originUnflushed = true
            case .sendToClient(let bytes):
                // A head and a small body go out as one buffer: one write, one piece to send.
                if var joined = toClient, joined.readableBytes + bytes.readableBytes <= Self.joinLimit {
                    toClient = nil
                    var bytes = bytes
                    joined.writeBuffer(&bytes)
                    toClient = joined
                } else {
                    if let earlier = toClient { context.write(wrapOutboundOut(earlier), promise: nil) }
                    toClient = bytes
                }
                clientUnflushed = true
            case .record(let exchange, let message):
                record(exchange, originEndpoint, message)
            case .closeClient:
                writeToClient(context)
                // Once what was written has gone: a close now would drop the last response.
                let channel = context.channel
                clientUnflushed = false
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
            case .closeOrigin:
                originChannel?.close(promise: nil)
                originChannel = nil
                originUnflushed = false
                // No read of the origin will complete to flush what goes to the client: now.
                readingOrigin = false
            }
        }
        writeToClient(context)
        if !readingOrigin { flushClient() }
    }

    /// Bytes for the client joined so far, written.
    private func writeToClient(_ context: ChannelHandlerContext) {
        guard let bytes = toClient else { return }
        toClient = nil
        context.write(wrapOutboundOut(bytes), promise: nil)
    }

    private func flushClient() {
        guard clientUnflushed, let context else { return }
        clientUnflushed = false
        context.flush()
    }

    private func flushOrigin() {
        guard originUnflushed else { return }
        originUnflushed = false
        originChannel?.flush()
    }

    private func connect(context: ChannelHandlerContext) {
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let handlers = { () -> [any ChannelHandler] in [HTTPOriginHandler(forwarder: this)] }
        openOrigin(handlers).whenComplete { result in
            let forwarder = this.value
            switch result {
            case .success(let (channel, endpoint)):
                guard forwarder.context != nil else {
                    channel.close(promise: nil)
                    return
                }
                forwarder.originChannel = channel
                forwarder.originEndpoint = endpoint
                forwarder.perform(forwarder.machine.originConnected())
                forwarder.flushOrigin()
            case .failure(let error):
                let timedOut = StatusCode(connectError: error) == .originTimeout
                forwarder.perform(
                    forwarder.machine.originConnectFailed(
                        status: timedOut ? 504 : 502, reason: timedOut ? "Gateway Timeout" : "Bad Gateway", message: "\(error)"))
            }
        }
    }
}
