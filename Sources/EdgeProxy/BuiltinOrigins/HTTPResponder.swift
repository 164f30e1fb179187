import NIOCore

/// A small HTTP/1.1 origin: each request is answered `200 OK` with a text body naming the
/// request line and every header it arrived with (so tests see what the edge added), on the
/// same connection while the client keeps it alive (HTTP/1.1 without `Connection: close`).
/// Request bodies (by `Content-Length` or chunked) are read whole before the answer, which says
/// how many bytes of content came (requests without a body are answered as before: no such line).
final class HTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var pending: [UInt8] = []
    /// The current request's body, while it comes, and the answer waiting for its end.
    private var body: HTTPBodyFramer?
    private var answer: (text: String, close: Bool)?
    private var closing = false
    static let headLimit = 16_384

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        while !closing {
            if var framer = body, let (text, close) = answer {
                let taken = framer.take(ByteBuffer(bytes: pending))
                guard taken.error == nil else {
                    respond(status: "400 Bad Request", body: "unreadable body\n", close: true, context: context)
                    return
                }
                pending.removeFirst(taken.count)
                body = framer
                guard taken.ended else { return }
                body = nil
                answer = nil
                let hadBody = framer.contentBytes > 0 || framer.wasChunked
                respond(
                    status: "200 OK", body: text + (hadBody ? "body: \(framer.contentBytes) bytes\n" : ""), close: close, context: context)
                continue
            }
            guard let end = pending.firstRange(of: Array("\r\n\r\n".utf8)) else {
                if pending.count > Self.headLimit {
                    respond(status: "431 Request Header Fields Too Large", body: "request head too large\n", close: true, context: context)
                }
                return
            }
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeFirst(end.upperBound)
            let lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.first ?? ""
            let headers = lines.dropFirst().compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1.lowercased() }
            let chunked = header("transfer-encoding")?.hasSuffix("chunked") == true
            let length = Int(header("content-length") ?? "") ?? 0
            let close = header("connection") == "close" || (requestLine.hasSuffix("HTTP/1.0") && header("connection") != "keep-alive")
            let text = (["edgesim origin: \(requestLine)"] + headers.map { "\($0.0): \($0.1)" }).joined(separator: "\n") + "\n"
            body = HTTPBodyFramer(chunked ? .chunked : length > 0 ? .length(length) : .none)
            answer = (text, close)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(status: String, body: String, close: Bool, context: ChannelHandlerContext) {
        let text =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n\(body)"
        guard close else {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
            return
        }
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in channel.close(promise: nil) }
    }
}
