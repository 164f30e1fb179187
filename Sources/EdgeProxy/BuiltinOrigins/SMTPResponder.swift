import EdgeModel
import NIOCore

/// Carries out `SMTPServerStateMachine` on a connection: splits lines, writes replies, runs the
/// reverse lookup the checks need and reports each transaction's outcome.
final class SMTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SMTPServerStateMachine
    private let banner: String
    private let lookup: ReverseDNSLookup?
    private let onOutcome: @Sendable (MailOutcome) -> Void
    /// Behind a PROXY header receiver: greet once the header names the client.
    private let awaitsHeader: Bool
    private var reader = SMTPLineReader()
    private var started = false
    /// The sender finished writing while a reply waited for the lookup.
    private var closeWhenAnswered = false

    init(
        banner: String, hostname: String, checks: [MailCheck], lookup: ReverseDNSLookup?, awaitsHeader: Bool,
        onOutcome: @escaping @Sendable (MailOutcome) -> Void
    ) {
        machine = SMTPServerStateMachine(hostname: hostname, policy: MailCheckPolicy(checks: checks))
        self.banner = banner
        self.lookup = lookup
        self.awaitsHeader = awaitsHeader
        self.onOutcome = onOutcome
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, !awaitsHeader {
            start(client: context.channel.remoteAddress.flatMap(Endpoint.init)?.address, context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if !awaitsHeader { start(client: context.channel.remoteAddress.flatMap(Endpoint.init)?.address, context: context) }
        context.fireChannelActive()
    }

    private func start(client: IPAddress?, context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        perform(machine.connected(client: client?.unmapped, banner: banner), context: context)
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        // Nothing before the greeting counts (a receiver passes bytes only after the header).
        guard started else { return }
        for line in reader.feed(buffer.readableBytesView) {
            perform(machine.line(line.text, tooLong: line.tooLong), context: context)
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let received = event as? ProxyHeaderReceived {
            // A LOCAL header (no addresses) leaves the edge as the client.
            let peer = context.channel.remoteAddress.flatMap(Endpoint.init)?.address
            start(client: received.header.source?.address ?? peer, context: context)
        }
        if case ChannelEvent.inputClosed = event {
            // Commands sent before the sender stopped writing still get their replies.
            if machine.isWaiting { closeWhenAnswered = true } else { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func perform(_ actions: [SMTPServerStateMachine.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .reply(let text):
                context.write(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
            case .outcome(let outcome):
                onOutcome(outcome)
            case .close:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: nil)
                context.close(mode: .output, promise: nil)
            case .lookUp(let address):
                guard let lookup else {
                    perform(machine.reverseLookupFinished(.failed("no resolver configured")), context: context)
                    continue
                }
                let promise = context.eventLoop.makePromise(of: ReverseDNS.self)
                promise.completeWithTask { await lookup.lookUp(address) }
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { answer in
                    let context = bound.value
                    handler.value.perform(handler.value.machine.reverseLookupFinished(answer), context: context)
                    context.flush()
                    if handler.value.closeWhenAnswered, !handler.value.machine.isWaiting { context.close(promise: nil) }
                }
            }
        }
    }
}
