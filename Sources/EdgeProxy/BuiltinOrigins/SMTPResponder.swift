import NIOCore

/// Just enough of an SMTP server to test through the edge: a `220` greeting, `250` to every
/// command line, `221` and close on `QUIT`.
final class SMTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let banner: String
    private var line: [UInt8] = []

    init(banner: String) {
        self.banner = banner
    }

    func channelActive(context: ChannelHandlerContext) {
        reply("220 \(banner)", context: context)
        context.flush()
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            reply("220 \(banner)", context: context)
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        while let byte = buffer.readInteger(as: UInt8.self) {
            guard byte == UInt8(ascii: "\n") else {
                if line.count < 4096 { line.append(byte) }
                continue
            }
            let command = String(decoding: line, as: UTF8.self).trimmingSuffix("\r").uppercased()
            line = []
            if command.hasPrefix("QUIT") {
                reply("221 2.0.0 closing", context: context)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: nil)
                context.close(mode: .output, promise: nil)
                return
            }
            reply(command.hasPrefix("HELO") || command.hasPrefix("EHLO") ? "250 hello" : "250 2.0.0 ok", context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func reply(_ text: String, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
