import Foundation
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Drives one generated TCP connection through its exchange with the origin and fulfils the
/// promise with when the first byte came back, or fails it saying what went wrong.
final class ExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The mail origin refused the message with this reply.
    struct Refused: Error, CustomStringConvertible {
        var reply: String
        var description: String { "the origin refused the message: \(reply)" }
    }

    private enum Stage {
        /// Waiting for the reply to mail step `index` (0 is the greeting).
        case mail(index: Int)
        case echoing(expected: Int)
        case holding
        case pinging(expected: Int)
        case waitingReply(prefix: String)
        /// Reading one HTTP response, to its `Content-Length` or the end of the connection.
        case httpResponse
        case done
    }

    private let kind: ExchangeKind
    private let payload: ByteBuffer
    private let hold: TimeAmount
    private let host: String
    private let promise: EventLoopPromise<NIODeadline?>
    private var stage: Stage = .done
    private var received: [UInt8] = []
    /// Echoed bytes checked so far against the payload (checked as they come, not kept).
    private var echoed = 0
    private var firstByte: NIODeadline?
    private static let ping = ByteBuffer(string: "edgesim still here")

    /// An HTTP response as it came: the status, and what the body says the origin saw.
    struct HTTPReply: Sendable, Equatable {
        var status: Int
        var body: String
    }

    /// Where the HTTP exchange puts the response it read (any status).
    private let httpReply: NIOLockedValueBox<HTTPReply?>

    init(
        kind: ExchangeKind, bytes: Int, hold: TimeAmount, host: String, promise: EventLoopPromise<NIODeadline?>,
        httpReply: NIOLockedValueBox<HTTPReply?> = NIOLockedValueBox(nil)
    ) {
        self.httpReply = httpReply
        self.kind = kind
        self.payload = Payload.of(bytes)
        self.hold = hold
        self.host = host
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        switch kind {
        case .echo:
            stage = .echoing(expected: payload.readableBytes)
            context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
        case .mail:
            stage = .mail(index: 0)
        case .http:
            stage = .httpResponse
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
        if case .echoing(let expected) = stage, kind == .echo {
            // Compared piece by piece with what was sent at the same offset, so a transfer of
            // any size needs no copy of what came back.
            let count = buffer.readableBytes
            let offset = echoed
            guard count <= expected - echoed,
                buffer.withUnsafeReadableBytes({ came in
                    payload.withUnsafeReadableBytes { sent in
                        count == 0 || memcmp(came.baseAddress!, sent.baseAddress! + offset, count) == 0
                    }
                })
            else {
                return fail("the bytes that came back differ from those sent", context: context)
            }
            echoed += buffer.readableBytes
            guard echoed == expected else { return }
            echoed = 0
            return afterExchange(context: context)
        }
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
        switch stage {
        case .echoing(let expected), .pinging(let expected):
            guard received.count >= expected else { return }
            received = []
            if case .pinging = stage { return finish(context: context) }
            afterExchange(context: context)
        case .mail(let index):
            guard case .mail(let envelope) = kind, let reply = completeReply() else { return }
            received = []
            let steps = mailSteps(envelope)
            let (expected, _) = steps[index]
            guard reply.hasPrefix(expected) else {
                if index == 0 { return fail("greeting was '\(reply)', not \(expected)", context: context) }
                // A refusal ends the transaction politely; the reply is the result.
                if reply.hasPrefix("4") || reply.hasPrefix("5"), index >= 2 {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "QUIT\r\n")), promise: nil)
                    return refuse(reply, context: context)
                }
                return fail("server said '\(reply)' (expected \(expected))", context: context)
            }
            guard index + 1 < steps.count else { return finish(context: context) }
            stage = .mail(index: index + 1)
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: steps[index + 1].send)), promise: nil)
        case .waitingReply(let prefix):
            if let line = firstLine() {
                line.hasPrefix(prefix) ? finish(context: context) : fail("response was '\(line)'", context: context)
            }
        case .httpResponse:
            if let reply = Self.httpResponse(received, atEnd: false) { answered(reply, context: context) }
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
            fail("connection closed after \(max(echoed, received.count)) of \(expected) bytes came back", context: context)
        case .holding: fail("connection closed while held open", context: context)
        case .httpResponse:
            if let reply = Self.httpResponse(received, atEnd: true) {
                answered(reply, context: context)
            } else {
                fail("connection closed before a whole HTTP response came", context: context)
            }
        case .mail, .waitingReply: fail("connection closed before the origin answered", context: context)
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

    /// Each step's expected reply code and what is sent after it (the greeting's reply is
    /// awaited first, so step 0 sends nothing).
    private func mailSteps(_ envelope: MailEnvelope) -> [(expect: String, send: String)] {
        var body = "From: <\(envelope.from)>\r\nTo: <\(envelope.to)>\r\nSubject: edgesim test\r\n\r\n"
        let line = "edgesim test message line, sent through the edge to see who the origin thinks sent it\r\n"
        while body.utf8.count + line.utf8.count <= payload.readableBytes { body += line }
        return [
            ("220", ""),
            ("250", "EHLO \(envelope.helo)\r\n"),
            ("250", "MAIL FROM:<\(envelope.from)>\r\n"),
            ("250", "RCPT TO:<\(envelope.to)>\r\n"),
            ("354", "DATA\r\n"),
            ("250", body + ".\r\n"),
            ("221", "QUIT\r\n"),
        ]
    }

    /// A whole reply: its last line has a space (or nothing) after the code.
    private func completeReply() -> String? {
        // Bytes, not Characters: "\r\n" is one Character in Swift.
        guard received.last == UInt8(ascii: "\n") else { return nil }
        var last = received.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).last ?? []
        if last.last == UInt8(ascii: "\r") { last = last.dropLast() }
        guard last.count == 3 || (last.count > 3 && last[last.startIndex + 3] == UInt8(ascii: " ")) else { return nil }
        return String(decoding: last, as: UTF8.self)
    }

    /// A 2xx response completes the exchange; any other is kept and fails it.
    private func answered(_ reply: HTTPReply, context: ChannelHandlerContext) {
        httpReply.withLockedValue { $0 = reply }
        (200..<300).contains(reply.status) ? finish(context: context) : fail("HTTP \(reply.status)", context: context)
    }

    /// One whole HTTP response in `bytes`: by its `Content-Length`, or everything once the
    /// connection ended (`atEnd`); nil while more is to come.
    static func httpResponse(_ bytes: [UInt8], atEnd: Bool) -> HTTPReply? {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
        let statusLine = head.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else { return nil }
        let length = head.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first
        let body = bytes[end.upperBound...]
        if let length {
            guard body.count >= length else { return nil }
            return HTTPReply(status: status, body: String(decoding: body.prefix(length), as: UTF8.self))
        }
        return atEnd ? HTTPReply(status: status, body: String(decoding: body, as: UTF8.self)) : nil
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

    private func refuse(_ reply: String, context: ChannelHandlerContext) {
        fail(with: Refused(reply: reply), context: context)
    }

    private func fail(_ message: String, context: ChannelHandlerContext) {
        fail(with: Failure(description: message), context: context)
    }

    private func fail(with error: any Error, context: ChannelHandlerContext) {
        if case .done = stage { return }
        stage = .done
        promise.fail(error)
        context.close(promise: nil)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

/// The bytes a generated connection or flow sends: a repeating pattern (0 to 250, so a byte out
/// of place shows), made once for each size and shared (a ByteBuffer is copied only on write).
enum Payload {
    private static let made = Mutex<[Int: ByteBuffer]>([:])

    static func of(_ bytes: Int) -> ByteBuffer {
        made.withLock { made in
            if let payload = made[bytes] { return payload }
            var payload = ByteBuffer()
            payload.reserveCapacity(bytes)
            payload.writeWithUnsafeMutableBytes(minimumWritableBytes: bytes) { raw in
                for index in 0..<bytes { raw[index] = UInt8(truncatingIfNeeded: index % 251) }
                return bytes
            }
            // A few sizes a run; the oldest go if a scenario uses many.
            if made.count >= 16 { made.removeAll() }
            made[bytes] = payload
            return payload
        }
    }
}
