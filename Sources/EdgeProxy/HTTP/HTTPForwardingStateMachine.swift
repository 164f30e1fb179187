import EdgeModel
import NIOCore

/// The decisions of one client connection of an http or https application, on the bytes
/// themselves, without sockets. Requests are read head by head (`HTTPHead`) and body by body
/// (`HTTPBodyFramer`) and forwarded to one kept-alive origin connection as they come
/// (pipelined); the origin is opened on the first request and again after it closed, and
/// responses go back in order with the same care. A request the edge cannot forward is answered
/// by the edge (400, 431; 502 or 504 when the origin cannot be reached or goes away), in its
/// turn; a response already under way can only be cut off.
public struct HTTPForwardingStateMachine: Sendable {
    public enum Origin: Equatable, Sendable {
        case none
        case connecting
        case ready
    }

    /// The edge's own answer to a request, given when the request's turn comes.
    public struct Answer: Equatable, Sendable {
        public var status: Int
        public var reason: String
        public var message: String
    }

    /// One request and its response, as far as they got.
    public struct Exchange: Equatable, Sendable {
        public var method: String
        public var uri: String
        public var started: NIODeadline
        /// Body bytes each way (content, not chunk framing).
        public var bytesIn = 0
        public var bytesOut = 0
        /// Set once the final response head went to the client.
        public var status: Int?
        /// The client asked to close after this response (HTTP/1.0, `Connection: close`).
        public var clientCloses: Bool
        /// Not forwarded: the edge answers this itself, then closes.
        public var answer: Answer?
    }

    public enum Action: Equatable, Sendable {
        case connectOrigin
        case sendToOrigin(ByteBuffer)
        case sendToClient(ByteBuffer)
        /// One request is over: write its event.
        case record(Exchange, message: String?)
        case closeClient
        case closeOrigin
    }

    /// Longest head either way.
    public static let headLimit = 65_536

    private enum Reading: Equatable {
        case head
        case body(HTTPBodyFramer)
        /// After a request the connection ends with, or one that could not be read.
        case stopped
    }

    public private(set) var origin: Origin = .none
    public private(set) var exchanges: [Exchange] = []
    private var reading: Reading = .head
    private var answering: Reading = .head
    /// A head begun but not finished, each way.
    private var partialRequest: ByteBuffer?
    private var partialResponse: ByteBuffer?
    /// Request bytes waiting for the origin connection.
    private var outbox: [ByteBuffer] = []
    /// The origin said it closes after the response under way.
    private var originCloses = false
    private var closed = false
    /// The client's address as the origin is told it.
    public let client: String
    /// `X-Forwarded-Proto`: http or https.
    public let scheme: String

    public init(client: IPAddress, scheme: String) {
        self.client = "\(client.unmapped)"
        self.scheme = scheme
    }

    // MARK: From the client

    public mutating func clientBytes(_ input: ByteBuffer, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        // Room for a request's actions at once, rather than growing into it.
        actions.reserveCapacity(4)
        var buffer = input
        while buffer.readableBytes > 0, !closed {
            switch reading {
            case .stopped:
                return actions
            case .head:
                if partialRequest == nil {
                    // Empty lines before a request line are allowed (RFC 9112, 2.2).
                    while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                        first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n")
                    {
                        buffer.moveReaderIndex(forwardBy: 1)
                    }
                    if buffer.readableBytes == 0 { return actions }
                }
                let head: HTTPHead
                switch Self.head(.request, in: &buffer, partial: &partialRequest) {
                case .success(nil): return actions
                case .success(let parsed?): head = parsed
                case .failure(let error):
                    reading = .stopped
                    let answer =
                        error.tooLarge
                        ? Answer(
                            status: 431, reason: "Request Header Fields Too Large",
                            message: "the request head is over \(Self.headLimit) bytes")
                        : Answer(status: 400, reason: "Bad Request", message: "\(error)")
                    exchanges.append(
                        Exchange(method: "-", uri: "-", started: now, clientCloses: true, answer: answer))
                    return actions + answerInTurn()
                }
                exchanges.append(Exchange(method: head.method, uri: head.target, started: now, clientCloses: head.closes))
                send(head.forwardedRequest(client: client, scheme: scheme), into: &actions)
                let body = HTTPBodyFramer(head.framing())
                reading = !body.isDone ? .body(body) : head.closes ? .stopped : .head
            case .body(var body):
                let before = body.contentBytes
                let taken = body.take(buffer)
                exchanges[exchanges.count - 1].bytesIn += body.contentBytes - before
                if taken.count > 0 { send(buffer.readSlice(length: taken.count)!, into: &actions) }
                if let error = taken.error {
                    // Part of the body went already: neither side can be put right.
                    return actions + cutOff(message: "the request body could not be read: \(error)")
                }
                reading = !taken.ended ? .body(body) : exchanges[exchanges.count - 1].clientCloses ? .stopped : .head
            }
        }
        return actions
    }

    /// The client went away: the origin connection goes too.
    public mutating func clientClosed() -> [Action] {
        guard !closed else { return [.closeOrigin] }
        closed = true
        var actions = exchanges.filter { $0.answer == nil }.map {
            Action.record($0, message: "the client closed before the response was complete")
        }
        exchanges.removeAll()
        actions.append(.closeOrigin)
        return actions
    }

    // MARK: From the origin

    public mutating func originConnected() -> [Action] {
        guard origin == .connecting else { return [] }
        defer { outbox.removeAll() }
        guard !closed else {
            // The client is gone or cut off meanwhile: nothing goes to this connection.
            origin = .none
            return [.closeOrigin]
        }
        origin = .ready
        return outbox.map { .sendToOrigin($0) }
    }

    /// The origin could not be reached: every request sent is answered with `status`.
    public mutating func originConnectFailed(status: Int, reason: String, message: String) -> [Action] {
        guard origin == .connecting else { return [] }
        origin = .none
        outbox.removeAll()
        return failAll(Answer(status: status, reason: reason, message: message))
    }

    public mutating func originBytes(_ input: ByteBuffer) -> [Action] {
        var actions: [Action] = []
        actions.reserveCapacity(4)
        var buffer = input
        while buffer.readableBytes > 0, !closed, origin == .ready {
            guard let first = exchanges.first, first.answer == nil else {
                // Bytes no request asked for: the origin is not speaking HTTP as it should.
                return actions + originBroke("the origin sent bytes no request asked for")
            }
            switch answering {
            case .head, .stopped:
                let head: HTTPHead
                switch Self.head(.response, in: &buffer, partial: &partialResponse) {
                case .success(nil): return actions
                case .success(let parsed?): head = parsed
                case .failure(let error): return actions + originBroke("the origin's response could not be read: \(error)")
                }
                if head.status < 200 {
                    guard head.status != 101 else {
                        return actions + originBroke("the origin switched protocols, which edgesim does not forward")
                    }
                    // Interim (100 Continue, 103 Early Hints): passed on, the final one follows.
                    actions.append(.sendToClient(head.forwardedResponse(closing: false)))
                    continue
                }
                let framing = head.framing(requestMethod: first.method)
                exchanges[0].status = head.status
                originCloses = head.closes
                let closing = first.clientCloses || framing == .untilClose
                if closing { exchanges[0].clientCloses = true }
                actions.append(.sendToClient(head.forwardedResponse(closing: closing)))
                let body = HTTPBodyFramer(framing)
                if body.isDone {
                    responseEnded(into: &actions)
                } else {
                    answering = .body(body)
                }
            case .body(var body):
                let before = body.contentBytes
                let taken = body.take(buffer)
                exchanges[0].bytesOut += body.contentBytes - before
                if taken.count > 0 { actions.append(.sendToClient(buffer.readSlice(length: taken.count)!)) }
                if let error = taken.error {
                    return actions + cutOff(message: "the origin's response body could not be read: \(error)")
                }
                answering = .body(body)
                if taken.ended { responseEnded(into: &actions) }
            }
        }
        return actions
    }

    /// The origin connection ended. Idle, nothing is lost (the next request opens another); a
    /// body that runs until the close is complete; otherwise requests sent are answered 502, and
    /// a response under way is cut off.
    public mutating func originClosed() -> [Action] {
        guard origin != .none else { return [] }
        origin = .none
        outbox.removeAll()
        partialResponse = nil
        originCloses = false
        guard !closed, let first = exchanges.first, first.answer == nil else { return answerInTurn() }
        if case .body(let body) = answering {
            if body.state == .untilClose {
                var actions: [Action] = []
                responseEnded(into: &actions)
                return actions
            }
            return cutOff(message: "the origin closed the connection in the middle of the response")
        }
        answering = .head
        return failAll(Answer(status: 502, reason: "Bad Gateway", message: "the origin closed the connection before answering"))
    }

    // MARK: Inside

    /// The head at the front of what came, a head begun earlier put in front of it: the head
    /// (and the bytes after it left in `buffer`), nil while it is not whole (the bytes kept in
    /// `partial`), or why it cannot be read.
    private static func head(
        _ kind: HTTPHead.Kind, in buffer: inout ByteBuffer, partial: inout ByteBuffer?
    ) -> Result<HTTPHead?, HTTPHeadError> {
        if var earlier = partial {
            earlier.writeBuffer(&buffer)
            buffer = earlier
            partial = nil
        }
        do throws(HTTPHeadError) {
            guard let head = try HTTPHead.parse(buffer, kind: kind, limit: headLimit) else {
                partial = buffer
                return .success(nil)
            }
            buffer.moveReaderIndex(forwardBy: head.bytes.count)
            return .success(head)
        } catch {
            return .failure(error)
        }
    }

    /// The first exchange's response is complete.
    private mutating func responseEnded(into actions: inout [Action]) {
        answering = .head
        let done = exchanges.removeFirst()
        actions.append(.record(done, message: nil))
        if done.clientCloses {
            closed = true
            actions.append(.closeClient)
            actions.append(.closeOrigin)
            return
        }
        if originCloses {
            // Requests already sent on this connection are lost with it: each gets its 502.
            originCloses = false
            origin = .none
            outbox.removeAll()
            actions.append(.closeOrigin)
            guard exchanges.contains(where: { $0.answer == nil }) else {
                actions += answerInTurn()
                return
            }
            actions += failAll(
                Answer(status: 502, reason: "Bad Gateway", message: "the origin closed the connection after an earlier response"))
            return
        }
        // Mostly nothing: no answer of the edge's own waits behind this response.
        let more = answerInTurn()
        if !more.isEmpty { actions += more }
    }

    /// Answers of the edge's own whose turn has come (their requests are first in line).
    private mutating func answerInTurn() -> [Action] {
        var actions: [Action] = []
        while !closed, let first = exchanges.first, let answer = first.answer {
            exchanges.removeFirst()
            actions += answered(first, answer, closing: true)
        }
        return actions
    }

    /// Every open request answered with `answer` (or its own), in order.
    private mutating func failAll(_ answer: Answer) -> [Action] {
        var actions: [Action] = []
        while !closed, let first = exchanges.first {
            exchanges.removeFirst()
            // A request whose body is still coming cannot be followed by another.
            let unfinished = exchanges.isEmpty && reading != .head
            actions += answered(first, first.answer ?? answer, closing: first.clientCloses || first.answer != nil || unfinished)
        }
        return actions
    }

    private mutating func answered(_ exchange: Exchange, _ answer: Answer, closing: Bool) -> [Action] {
        var exchange = exchange
        exchange.status = answer.status
        var actions: [Action] = [
            .sendToClient(HTTPHead.answer(status: answer.status, reason: answer.reason, message: answer.message, closing: closing)),
            .record(exchange, message: answer.message),
        ]
        if closing {
            closed = true
            actions += [.closeClient, .closeOrigin]
        }
        return actions
    }

    /// The origin cannot be followed any more: the response under way is cut off, or, before
    /// one began, each open request is answered 502.
    private mutating func originBroke(_ message: String) -> [Action] {
        origin = .none
        outbox.removeAll()
        partialResponse = nil
        if exchanges.first?.status != nil { return cutOff(message: message) }
        answering = .head
        return [.closeOrigin] + failAll(Answer(status: 502, reason: "Bad Gateway", message: message))
    }

    /// Both connections end; the exchange under way is recorded with `message`.
    private mutating func cutOff(message: String) -> [Action] {
        closed = true
        var actions: [Action] = []
        if let first = exchanges.first, first.answer == nil { actions.append(.record(first, message: message)) }
        exchanges.removeAll()
        return actions + [.closeClient, .closeOrigin]
    }

    private mutating func send(_ bytes: ByteBuffer, into actions: inout [Action]) {
        switch origin {
        case .ready:
            actions.append(.sendToOrigin(bytes))
        case .connecting:
            outbox.append(bytes)
        case .none:
            origin = .connecting
            outbox.append(bytes)
            actions.append(.connectOrigin)
        }
    }
}
