import NIOCore

/// A small HTTP/1.1 origin: each request is answered `200 OK` with a text body naming the
/// request line and every header it arrived with (so tests see what the edge added), on the
/// same connection while the client keeps it alive (HTTP/1.1 without `Connection: close`).
/// Request bodies (by `Content-Length` or chunked) are read whole before the answer, which says
/// how many bytes of content came (requests without a body are answered as before: no such line).
/// Heads are read from the bytes as they came, without building strings: the origin sits behind
/// every HTTP benchmark, so what it spends per header is spent in every peer's figures.
final class HTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes received and not yet answered (none held otherwise: a received buffer kept would
    /// stop the channel from reusing it).
    private var pending: ByteBuffer?
    /// How many of `pending`'s bytes are known to hold no head end.
    private var searched = 0
    /// The current request's body, while it comes, and the answer waiting for its end.
    private var body: HTTPBodyFramer?
    private var answer: EchoRequest?
    private var closing = false
    private var unflushed = false
    static let headLimit = 16_384

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        var pending = buffer
        if var held = self.pending {
            self.pending = nil
            held.writeBuffer(&buffer)
            pending = held
        }
        defer { self.pending = pending.readableBytes > 0 && !closing ? pending : nil }
        while !closing {
            if var framer = body, let request = answer {
                let taken = framer.take(pending)
                guard taken.error == nil else {
                    respond(status: "400 Bad Request", body: "unreadable body\n", context: context)
                    return
                }
                pending.moveReaderIndex(forwardBy: taken.count)
                body = framer
                guard taken.ended else { break }
                body = nil
                answer = nil
                respond(
                    to: request, contentBytes: framer.contentBytes > 0 || framer.wasChunked ? framer.contentBytes : nil, context: context)
                continue
            }
            guard let length = headLength(pending) else {
                if pending.readableBytes > Self.headLimit {
                    respond(status: "431 Request Header Fields Too Large", body: "request head too large\n", context: context)
                }
                break
            }
            let request = EchoRequest(head: pending.readSlice(length: length)!)
            searched = 0
            body = HTTPBodyFramer(request.chunked ? .chunked : request.contentLength > 0 ? .length(request.contentLength) : .none)
            answer = request
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The length of the head at the front of `pending`, up to its empty line, once it is all there.
    private func headLength(_ pending: ByteBuffer) -> Int? {
        let found = pending.withUnsafeReadableBytes { bytes -> Int? in
            var index = max(searched, 3)
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "\n"), bytes[index - 1] == UInt8(ascii: "\r"), bytes[index - 2] == UInt8(ascii: "\n"),
                    bytes[index - 3] == UInt8(ascii: "\r")
                {
                    return index + 1
                }
                index += 1
            }
            return nil
        }
        if found == nil { searched = pending.readableBytes }
        return found
    }

    private func respond(to request: EchoRequest, contentBytes: Int?, context: ChannelHandlerContext) {
        var echo = request.echo
        if let contentBytes { echo.writeString("body: \(contentBytes) bytes\n") }
        var out = context.channel.allocator.buffer(capacity: echo.readableBytes + 80)
        out.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ")
        out.writeString(String(echo.readableBytes))
        out.writeStaticString(request.closes ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        out.writeBuffer(&echo)
        send(out, close: request.closes, context: context)
    }

    private func respond(status: String, body: String, context: ChannelHandlerContext) {
        let text =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        send(ByteBuffer(string: text), close: true, context: context)
    }

    private func send(_ buffer: ByteBuffer, close: Bool, context: ChannelHandlerContext) {
        guard close else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            unflushed = true
            return
        }
        closing = true
        unflushed = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// What the origin needs of one request head: the text it echoes (the request line, then each
/// `name: value` with the value's surrounding blanks trimmed; lines without a colon left out),
/// how the body is framed, and whether the client closes after it. The first line of a name
/// counts.
struct EchoRequest {
    private(set) var echo = ByteBuffer()
    private(set) var chunked = false
    private(set) var contentLength = 0
    private(set) var closes = false

    init(head: ByteBuffer) {
        echo = ByteBufferAllocator().buffer(capacity: head.readableBytes + 32)
        echo.writeStaticString("edgesim origin: ")
        head.withUnsafeReadableBytes { bytes in
            var seen: (encoding: Bool, length: Bool, connection: Bool) = (false, false, false)
            var http10 = false
            var keepAlive = false
            var start = 0
            var first = true
            // Each line up to its CRLF; the head ends with an empty one.
            while start < bytes.count {
                var end = start
                while end + 1 < bytes.count, !(bytes[end] == UInt8(ascii: "\r") && bytes[end + 1] == UInt8(ascii: "\n")) { end += 1 }
                if end + 1 >= bytes.count { end = bytes.count }
                defer { start = end + 2 }
                if end == start { break }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                if first {
                    first = false
                    echo.writeBytes(line)
                    echo.writeStaticString("\n")
                    http10 = line.count >= 8 && Self.equal(UnsafeRawBufferPointer(rebasing: line[(line.count - 8)...]), "HTTP/1.0")
                    continue
                }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
                let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
                var valueStart = colon + 1
                var valueEnd = line.count
                while valueStart < valueEnd, Self.isBlank(line[valueStart]) { valueStart += 1 }
                while valueEnd > valueStart, Self.isBlank(line[valueEnd - 1]) { valueEnd -= 1 }
                let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
                echo.writeBytes(name)
                echo.writeStaticString(": ")
                echo.writeBytes(value)
                echo.writeStaticString("\n")
                if !seen.encoding, Self.equal(name, "transfer-encoding") {
                    seen.encoding = true
                    chunked = value.count >= 7 && Self.equal(UnsafeRawBufferPointer(rebasing: value[(value.count - 7)...]), "chunked")
                } else if !seen.length, Self.equal(name, "content-length") {
                    seen.length = true
                    contentLength = Int(String(decoding: value, as: UTF8.self)) ?? 0
                } else if !seen.connection, Self.equal(name, "connection") {
                    seen.connection = true
                    closes = Self.equal(value, "close")
                    keepAlive = Self.equal(value, "keep-alive")
                }
            }
            if http10, !keepAlive { closes = true }
        }
    }

    /// Whether `bytes` are `lowercase` in any case (ASCII).
    private static func equal(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte == expected[index] || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == expected[index])
                else { return false }
            }
            return true
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}
