import NIOCore

/// A one-response HTTP/1.1 server: after the request's head, `200 OK` with a short text body,
/// then close.
final class HTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var head: [UInt8] = []
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var buffer = unwrapInboundIn(data)
        head += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard head.count <= 16_384 else {
            respond(status: "431 Request Header Fields Too Large", body: "request head too large\n", context: context)
            return
        }
        guard head.suffix(4) == Array("\r\n\r\n".utf8) || head.firstRange(of: Array("\r\n\r\n".utf8)) != nil else { return }
        let requestLine = String(decoding: head.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        let body = "edgesim origin: \(requestLine)\n"
        respond(status: "200 OK", body: body, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(status: String, body: String, context: ChannelHandlerContext) {
        answered = true
        let text =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in channel.close(promise: nil) }
    }
}
