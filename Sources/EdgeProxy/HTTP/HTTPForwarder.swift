import EdgeModel
import NIOCore
import NIOHTTP1

/// Carries out `HTTPForwardingStateMachine` for one client connection of an http or https
/// application: decoded requests in, responses out, one kept-alive origin connection opened
/// through `openOrigin` (which resolves and connects, in TLS for full and strict) with an HTTP
/// client and an `HTTPOriginHandler` in its pipeline.
final class HTTPForwarder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Opens the origin leg with handlers made by the function given (afresh for each address
    /// tried); the endpoint it reached, or why not (502/504).
    typealias OpenOrigin = (@escaping () -> [any ChannelHandler]) -> EventLoopFuture<(any Channel, Endpoint)>

    private var machine: HTTPForwardingStateMachine
    private let openOrigin: OpenOrigin
    private let record: (HTTPForwardingStateMachine.Exchange, Endpoint?, String?) -> Void
    private var context: ChannelHandlerContext?
    private var originChannel: (any Channel)?
    private var originEndpoint: Endpoint?
    /// The write of the last response's end, which a close waits for.
    private var lastWrite: EventLoopFuture<Void>?

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
        switch unwrapInboundIn(data) {
        case .head(let head): perform(machine.requestHead(head, now: .now()))
        case .body(let body): perform(machine.requestBody(body))
        case .end: perform(machine.requestEnd())
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        originChannel?.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    /// A request the client cannot make (malformed HTTP) closes it; the decoder said why.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: From the origin leg

    func originResponse(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head): perform(machine.responseHead(head))
        case .body(let body): perform(machine.responseBody(body))
        case .end: perform(machine.responseEnd())
        }
    }

    func originResponseComplete() {
        context?.flush()
    }

    func originGone() {
        originChannel = nil
        perform(machine.originClosed())
    }

    // MARK: Carrying out

    private func perform(_ actions: [HTTPForwardingStateMachine.Action]) {
        guard let context else { return }
        for action in actions {
            switch action {
            case .connectOrigin:
                connect(context: context)
            case .sendToOrigin(let part):
                originChannel?.write(part, promise: nil)
            case .sendToClient(let part):
                if case .end = part {
                    lastWrite = context.writeAndFlush(wrapOutboundOut(part))
                } else {
                    context.write(wrapOutboundOut(part), promise: nil)
                }
            case .answer(let status, let message):
                let body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(message)\n")
                var headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(body.readableBytes)")])
                headers.add(name: "Server", value: "edgesim")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                lastWrite = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            case .record(let exchange, let message):
                record(exchange, originEndpoint, message)
            case .closeClient:
                // Once what was written has gone: a close now would drop the last response.
                let channel = context.channel
                context.flush()
                (lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in channel.close(promise: nil) }
            case .closeOrigin:
                originChannel?.close(promise: nil)
                originChannel = nil
            }
        }
    }

    private func connect(context: ChannelHandlerContext) {
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let handlers = { () -> [any ChannelHandler] in
            [
                HTTPRequestEncoder(), ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPOriginHandler(forwarder: this),
            ]
        }
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
                channel.flush()
            case .failure(let error):
                let status: HTTPResponseStatus = StatusCode(connectError: error) == .originTimeout ? .gatewayTimeout : .badGateway
                forwarder.perform(forwarder.machine.originConnectFailed(status, message: "\(error)"))
            }
        }
    }
}
