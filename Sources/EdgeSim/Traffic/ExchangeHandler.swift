import NIOCore

/// Drives one generated TCP connection through its exchange with the origin and fulfils the
/// promise with when the first byte came back, or fails it saying what went wrong.
final class ExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private enum Stage {
        case waitingGreeting
        case echoing(expected: Int)
        case holding
        case pinging(expected: Int)
        case waitingReply(prefix: String)
        case done
    }

    private let kind: ExchangeKind
    private let payload: ByteBuffer
    private let hold: TimeAmount
    private let host: String
    private let promise: EventLoopPromise<NIODeadline?>
    private var stage: Stage = .done
    private var received: [UInt8] = []
    private var firstByte: NIODeadline?
    private static let ping = ByteBuffer(string: "edgesim still here")

    init(kind: ExchangeKind, bytes: Int, hold: TimeAmount, host: String, promise: EventLoopPromise<NIODeadline?>) {
        self.kind = kind
        var payload = ByteBuffer()
        payload.writeBytes((0..<bytes).map { UInt8(truncatingIfNeeded: $0 % 251) })
        self.payload = payload
        self.hold = hold
        self.host = host
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        switch kind {
        case .echo:
            stage = .echoing(expected: payload.readableBytes)
            context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
        case .smtp:
            stage = .waitingGreeting
        case .http:
            stage = .waitingReply(prefix: "HTTP/1.1 200")
            let request = "GET / HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: edgesim\r\nConnection: close\r\n\r\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        case .anyReply:
            stage = .echoing(expected: 1)
            context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if firstByte == nil { firstByte = .now() }
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
        switch stage {
        case .echoing(let expected), .pinging(let expected):
            guard received.count >= expected else { return }
            if case .echoing = stage, kind == .echo, received != Array(payload.readableBytesView) {
                return fail("the bytes that came back differ from those sent", context: context)
            }
            received = []
            if case .pinging = stage { return finish(context: context) }
            afterExchange(context: context)
        case .waitingGreeting:
            guard let line = firstLine() else { return }
            guard line.hasPrefix("220") else { return fail("greeting was '\(line)', not 220", context: context) }
            received = []
            var commands = "HELO edgesim.test\r\n"
            while commands.utf8.count + 6 < payload.readableBytes { commands += "NOOP\r\n" }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: commands + "QUIT\r\n")), promise: nil)
            stage = .waitingReply(prefix: "221")
        case .waitingReply(let prefix):
            let text = String(decoding: received, as: UTF8.self)
            if prefix == "221" {
                // Every command gets its line; the last is the answer to QUIT.
                guard let last = text.split(separator: "\r\n").last, text.hasSuffix("\r\n") else { return }
                if last.hasPrefix("221") {
                    finish(context: context)
                } else if !last.hasPrefix("250") {
                    fail("server said '\(last)'", context: context)
                }
            } else if let line = firstLine() {
                line.hasPrefix(prefix) ? finish(context: context) : fail("response was '\(line)'", context: context)
            }
        case .holding, .done:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The far end finished before the exchange did (half-closure is allowed, so this comes
        // as an event rather than as the channel going inactive).
        if case ChannelEvent.inputClosed = event { channelInactive(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch stage {
        case .done: break
        case .echoing(let expected), .pinging(let expected):
            fail("connection closed after \(received.count) of \(expected) bytes came back", context: context)
        case .holding: fail("connection closed while held open", context: context)
        case .waitingGreeting, .waitingReply: fail("connection closed before the origin answered", context: context)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("\(error)", context: context)
    }

    /// After the first exchange: hold the connection open, then prove it still works.
    private func afterExchange(context: ChannelHandlerContext) {
        guard hold > .zero else { return finish(context: context) }
        stage = .holding
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: hold) {
            let context = bound.value
            guard case .holding = handler.value.stage else { return }
            handler.value.stage = .pinging(expected: Self.ping.readableBytes)
            context.writeAndFlush(handler.value.wrapOutboundOut(Self.ping), promise: nil)
        }
    }

    private func firstLine() -> String? {
        guard let end = received.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return String(decoding: received[..<end], as: UTF8.self).trimmingCharacters(in: ["\r"])
    }

    private func finish(context: ChannelHandlerContext) {
        stage = .done
        promise.succeed(firstByte)
        context.close(promise: nil)
    }

    private func fail(_ message: String, context: ChannelHandlerContext) {
        guard case .done = stage else {
            stage = .done
            promise.fail(Failure(description: message))
            context.close(promise: nil)
            return
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
