import EdgeModel
import NIOCore
import NIOHTTP1

/// The decisions of one client connection of an http or https application, without sockets.
/// Requests are forwarded to one kept-alive origin connection as they come (pipelined), the
/// origin is opened on the first request and again after it closed, and responses go back in
/// order. When the origin cannot be reached or goes away, each request still open is answered
/// 502 (504 when connecting timed out); a response already under way can only be cut off.
struct HTTPForwardingStateMachine {
    enum Origin: Equatable {
        case none
        case connecting
        case ready
    }

    /// One request and its response, as far as they got.
    struct Exchange: Equatable {
        var method: HTTPMethod
        var uri: String
        var started: NIODeadline
        var bytesIn = 0
        var bytesOut = 0
        /// Set once the response head went to the client.
        var status: Int?
        /// The client asked to close after this response (HTTP/1.0, `Connection: close`).
        var clientCloses: Bool
    }

    enum Action: Equatable {
        case connectOrigin
        case sendToOrigin(HTTPClientRequestPart)
        case sendToClient(HTTPServerResponsePart)
        /// Answer the oldest open request with this status and text.
        case answer(HTTPResponseStatus, message: String)
        /// One request is over: write its event.
        case record(Exchange, message: String?)
        case closeClient
        case closeOrigin
    }

    private(set) var origin: Origin = .none
    private(set) var exchanges: [Exchange] = []
    /// Request parts waiting for the origin connection.
    private var outbox: [HTTPClientRequestPart] = []
    private var closed = false
    let client: IPAddress
    /// `X-Forwarded-Proto`: http or https.
    let scheme: String

    init(client: IPAddress, scheme: String) {
        self.client = client.unmapped
        self.scheme = scheme
    }

    mutating func requestHead(_ head: HTTPRequestHead, now: NIODeadline) -> [Action] {
        guard !closed else { return [] }
        exchanges.append(Exchange(method: head.method, uri: head.uri, started: now, clientCloses: !head.isKeepAlive))
        return send(.head(Self.forwarded(head, client: client, scheme: scheme)))
    }

    mutating func requestBody(_ body: ByteBuffer) -> [Action] {
        guard !closed, !exchanges.isEmpty else { return [] }
        exchanges[exchanges.count - 1].bytesIn += body.readableBytes
        return send(.body(.byteBuffer(body)))
    }

    mutating func requestEnd() -> [Action] {
        guard !closed else { return [] }
        return send(.end(nil))
    }

    mutating func originConnected() -> [Action] {
        guard origin == .connecting else { return [] }
        origin = .ready
        defer { outbox.removeAll() }
        return outbox.map { .sendToOrigin($0) }
    }

    /// The origin could not be reached: every open request is answered with `status`.
    mutating func originConnectFailed(_ status: HTTPResponseStatus, message: String) -> [Action] {
        guard origin == .connecting else { return [] }
        origin = .none
        outbox.removeAll()
        return failAll(status, message: message)
    }

    mutating func responseHead(_ head: HTTPResponseHead) -> [Action] {
        guard !closed, !exchanges.isEmpty, exchanges[0].status == nil else { return [] }
        exchanges[0].status = Int(head.status.code)
        var head = head
        for name in Self.hopByHop { head.headers.remove(name: name) }
        if exchanges[0].clientCloses { head.headers.add(name: "Connection", value: "close") }
        head.version = .http1_1
        return [.sendToClient(.head(head))]
    }

    mutating func responseBody(_ body: ByteBuffer) -> [Action] {
        guard !closed, !exchanges.isEmpty else { return [] }
        exchanges[0].bytesOut += body.readableBytes
        return [.sendToClient(.body(.byteBuffer(body)))]
    }

    mutating func responseEnd() -> [Action] {
        guard !closed, !exchanges.isEmpty else { return [] }
        let done = exchanges.removeFirst()
        var actions: [Action] = [.sendToClient(.end(nil)), .record(done, message: nil)]
        if done.clientCloses {
            closed = true
            actions.append(.closeClient)
        }
        return actions
    }

    /// The origin connection ended. Idle, nothing is lost (the next request opens another);
    /// otherwise open requests are answered 502, and a response under way is cut off.
    mutating func originClosed() -> [Action] {
        guard origin != .none else { return [] }
        origin = .none
        outbox.removeAll()
        guard !closed, let first = exchanges.first else { return [] }
        if first.status != nil {
            closed = true
            exchanges.removeAll()
            return [.record(first, message: "the origin closed the connection in the middle of the response"), .closeClient]
        }
        return failAll(.badGateway, message: "the origin closed the connection before answering")
    }

    /// The client went away: the origin connection goes too.
    mutating func clientClosed() -> [Action] {
        guard !closed else { return [.closeOrigin] }
        closed = true
        var actions = exchanges.map { Action.record($0, message: "the client closed before the response was complete") }
        exchanges.removeAll()
        actions.append(.closeOrigin)
        return actions
    }

    /// The handler answered the oldest request itself (`answer`): its event, and a close if asked.
    private mutating func failAll(_ status: HTTPResponseStatus, message: String) -> [Action] {
        var actions: [Action] = []
        while var exchange = exchanges.first, !closed {
            exchanges.removeFirst()
            exchange.status = Int(status.code)
            actions += [.answer(status, message: message), .record(exchange, message: message)]
            if exchange.clientCloses {
                closed = true
                actions.append(.closeClient)
            }
        }
        return actions
    }

    private mutating func send(_ part: HTTPClientRequestPart) -> [Action] {
        switch origin {
        case .ready:
            return [.sendToOrigin(part)]
        case .connecting:
            outbox.append(part)
            return []
        case .none:
            origin = .connecting
            outbox.append(part)
            return [.connectOrigin]
        }
    }

    /// Headers that describe one connection, not the message: dropped in both directions.
    static let hopByHop = ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"]

    /// The request as the origin gets it: the client's address added to `X-Forwarded-For` and
    /// given as `CF-Connecting-IP`, the scheme as `X-Forwarded-Proto`, connection headers
    /// dropped (the origin connection is kept alive whatever the client asked).
    static func forwarded(_ head: HTTPRequestHead, client: IPAddress, scheme: String) -> HTTPRequestHead {
        var head = head
        let address = "\(client.unmapped)"
        let earlier = head.headers["X-Forwarded-For"].joined(separator: ", ")
        head.headers.replaceOrAdd(name: "X-Forwarded-For", value: earlier.isEmpty ? address : "\(earlier), \(address)")
        head.headers.replaceOrAdd(name: "X-Forwarded-Proto", value: scheme)
        head.headers.replaceOrAdd(name: "CF-Connecting-IP", value: address)
        for name in hopByHop { head.headers.remove(name: name) }
        head.version = .http1_1
        return head
    }
}
