import NIOCore

/// Holds a TLS client's first bytes until its ClientHello is complete, reading for itself while
/// the relay behind it holds reads, and says what the hello asked for (or why it is none).
/// Removed when the edge answers, it passes the bytes it held on to the TLS handler.
final class ClientHelloReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var held: ByteBuffer?
    private var onHello: ((Result<TLSClientHello, TLSClientHello.Malformed>) -> Void)?
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Starts reading; the session calls this once it wants the hello. `onHello` is called
    /// once, on the channel's event loop.
    func start(context: ChannelHandlerContext, onHello: @escaping (Result<TLSClientHello, TLSClientHello.Malformed>) -> Void) {
        self.onHello = onHello
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let seconds = timeout.nanoseconds / 1_000_000_000
        timer = context.eventLoop.scheduleTask(in: timeout) {
            bound.value.report(.failure(.init(description: "no complete ClientHello within \(seconds) s")))
        }
        if let held, held.readableBytes > 0 {
            do {
                if let hello = try held.peekTLSClientHello() { report(.success(hello)) }
            } catch {
                report(.failure(error))
            }
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if held == nil {
            held = bytes
        } else {
            held!.writeBuffer(&bytes)
        }
        guard onHello != nil, let held else { return }
        // Bytes before `start` wait for it.
        do {
            if let hello = try held.peekTLSClientHello() { report(.success(hello)) }
        } catch {
            report(.failure(error))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if onHello != nil { context.read() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        onHello = nil
        context.fireChannelInactive()
    }

    /// The held bytes go on to whatever now follows (the TLS handler).
    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if let held, held.readableBytes > 0 {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
    }

    private func report(_ result: Result<TLSClientHello, TLSClientHello.Malformed>) {
        timer?.cancel()
        guard let onHello else { return }
        self.onHello = nil
        onHello(result)
    }
}
