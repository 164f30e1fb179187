import EdgeModel
import NIOCore
import Testing

@testable import EdgeProxy

/// The HTTP forwarder's decisions on the bytes each side sends, with no socket in sight.
@Suite struct HTTPForwardingStateMachineTests {
    typealias Machine = HTTPForwardingStateMachine
    let client = IPAddress("198.18.10.1")!
    let now = NIODeadline.now()

    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func toOrigin(_ actions: [Machine.Action]) -> String {
        actions.map { if case .sendToOrigin(let bytes) = $0 { String(buffer: bytes) } else { "" } }.joined()
    }

    func toClient(_ actions: [Machine.Action]) -> String {
        actions.map { if case .sendToClient(let bytes) = $0 { String(buffer: bytes) } else { "" } }.joined()
    }

    func records(_ actions: [Machine.Action]) -> [(Machine.Exchange, String?)] {
        actions.compactMap { if case .record(let exchange, let message) = $0 { (exchange, message) } else { nil } }
    }

    /// A machine whose origin is open, and what it sent for `request`.
    func ready(_ request: String, scheme: String = "http") -> (Machine, [Machine.Action]) {
        var machine = Machine(client: client, scheme: scheme)
        var actions = machine.clientBytes(bytes(request), now: now)
        actions += machine.originConnected()
        return (machine, actions)
    }

    @Test func theClientsAddressAndSchemeAreAddedAndConnectionHeadersDropped() {
        let (_, actions) = ready(
            "GET /a?b=1 HTTP/1.1\r\nHost: www.example\r\nX-Forwarded-For: 203.0.113.9\r\nconnection: close, TE\r\nKeep-Alive: 5\r\nTE: trailers\r\nCF-Connecting-IP: 1.2.3.4\r\nAccept: */*\r\n\r\n",
            scheme: "https")
        #expect(actions.first == .connectOrigin)
        #expect(
            toOrigin(actions)
                == "GET /a?b=1 HTTP/1.1\r\nHost: www.example\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.9, 198.18.10.1\r\nX-Forwarded-Proto: https\r\nCF-Connecting-IP: 198.18.10.1\r\n\r\n"
        )
        var mapped = Machine(client: IPAddress("::ffff:198.18.10.1")!, scheme: "http")
        #expect(
            toOrigin(mapped.clientBytes(bytes("GET / HTTP/1.1\r\n\r\n"), now: now) + mapped.originConnected()).contains(
                "CF-Connecting-IP: 198.18.10.1\r\n"))
    }

    /// A head split anywhere (here byte by byte) is the same head; bodies follow their length.
    @Test func requestsArriveInPiecesAndBodiesFollowTheirFraming() {
        let request =
            "POST /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /last HTTP/1.1\r\n\r\n"
        var machine = Machine(client: client, scheme: "http")
        var sent = ""
        for character in request.utf8 {
            let actions = machine.clientBytes(ByteBuffer(bytes: [character]), now: now)
            if actions.contains(.connectOrigin) { sent += toOrigin(machine.originConnected()) }
            sent += toOrigin(actions)
        }
        #expect(machine.exchanges.map(\.uri) == ["/up", "/c", "/last"])
        #expect(machine.exchanges.map(\.bytesIn) == [5, 3, 0], "content, not chunk framing")
        #expect(
            sent.contains(
                "Content-Length: 5\r\nX-Forwarded-For: 198.18.10.1\r\nX-Forwarded-Proto: http\r\nCF-Connecting-IP: 198.18.10.1\r\n\r\nhelloPUT /c HTTP/1.1\r\n"
            ))
        #expect(sent.contains("\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /last HTTP/1.1\r\n"), "the chunked body passes as it came")
    }

    /// Requests wait while the origin opens, then go in order; responses come back in order,
    /// each recorded, the origin's connection headers its own.
    @Test func pipelinedRequestsGetTheirResponsesInOrder() {
        var machine = Machine(client: client, scheme: "http")
        #expect(machine.clientBytes(bytes("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"), now: now) == [.connectOrigin])
        let sent = toOrigin(machine.originConnected())
        #expect(sent.hasPrefix("GET /1 HTTP/1.1\r\n") && sent.contains("GET /2 HTTP/1.1\r\n"))
        let first = machine.originBytes(
            bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nokHTTP/1.1 404 Not Found\r\nTransfer-"))
        #expect(toClient(first) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(records(first).map { $0.0.uri } == ["/1"])
        #expect(records(first).first?.0.status == 200 && records(first).first?.0.bytesOut == 2)
        let second = machine.originBytes(bytes("Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"))
        #expect(toClient(second) == "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n")
        #expect(records(second).map { $0.0.status } == [404])
        #expect(machine.exchanges.isEmpty)
        #expect(machine.originClosed().isEmpty, "an idle origin connection may end; the next request opens another")
        #expect(machine.clientBytes(bytes("GET /3 HTTP/1.1\r\n\r\n"), now: now) == [.connectOrigin])
    }

    /// Interim responses pass on; HEAD, 204 and 304 have no body whatever their headers say.
    @Test func interimAndBodilessResponses() {
        var (machine, _) = ready("HEAD /h HTTP/1.1\r\n\r\nPOST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        let head = machine.originBytes(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
        #expect(records(head).map { $0.0.uri } == ["/h"], "a response to HEAD ends with its head")
        let continued = machine.originBytes(bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"))
        #expect(toClient(continued) == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
        #expect(records(continued).map { $0.0.status } == [304])
    }

    /// HTTP/1.0 (or `Connection: close`) closes after its response, and says so; bytes after
    /// that request are not read.
    @Test func aClientThatAsksToCloseIsClosedAfterItsResponse() {
        var (machine, sent) = ready("GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n")
        #expect(!toOrigin(sent).contains("/ignored"))
        let actions = machine.originBytes(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        #expect(toClient(actions) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(actions.contains(.closeClient))
    }

    /// A response without a length runs until the origin closes: the client is told it closes.
    @Test func aBodyUntilTheOriginClosesEndsTheClientToo() {
        var (machine, _) = ready("GET / HTTP/1.1\r\n\r\n")
        #expect(toClient(machine.originBytes(bytes("HTTP/1.1 200 OK\r\n\r\nsome"))) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome")
        #expect(toClient(machine.originBytes(bytes(" more"))) == " more")
        let closed = machine.originClosed()
        #expect(records(closed).first?.0.bytesOut == 9 && records(closed).first?.1 == nil)
        #expect(closed.contains(.closeClient))
    }

    /// Requests the edge cannot forward are answered by it, in their turn, and the connection
    /// ends: 400 with the reason, 431 for a head too long.
    @Test func badRequestsAreAnsweredInTurn() {
        var (machine, sent) = ready(
            "GET /fine HTTP/1.1\r\n\r\nGET /bad HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(!toOrigin(sent).contains("/bad"))
        let actions = machine.originBytes(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        let text = toClient(actions)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("HTTP/1.1 400 Bad Request\r\n") && text.contains("both Content-Length and Transfer-Encoding"))
        #expect(records(actions).map { $0.0.status } == [200, 400])
        #expect(actions.last == .closeOrigin && actions.contains(.closeClient))

        for (request, status) in [
            ("GET / HTTP/2.0\r\n\r\n", "400"), ("GET /\r\n\r\n", "400"), ("GET / HTTP/1.1\r\n Folded: x\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"), ("GET / HTTP/1.1\r\nNo colon\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nX: \u{1}\r\n\r\n", "400"), ("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: Machine.headLimit) + "\r\n\r\n", "431"),
        ] {
            var machine = Machine(client: client, scheme: "http")
            let actions = machine.clientBytes(bytes(request), now: now)
            #expect(toClient(actions).hasPrefix("HTTP/1.1 \(status) "), "\(request.prefix(60)): \(toClient(actions))")
            #expect(!actions.contains(.connectOrigin) && actions.contains(.closeClient))
        }
    }

    /// An origin that cannot be reached: each request is answered, in order, and the next one
    /// tries again.
    @Test func anUnreachableOriginAnswersEachOpenRequest() {
        var machine = Machine(client: client, scheme: "http")
        _ = machine.clientBytes(bytes("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"), now: now)
        let failed = machine.originConnectFailed(status: 504, reason: "Gateway Timeout", message: "connect timed out")
        #expect(toClient(failed).components(separatedBy: "HTTP/1.1 504 Gateway Timeout\r\n").count == 3)
        #expect(records(failed).map { $0.0.status } == [504, 504])
        #expect(machine.exchanges.isEmpty && machine.origin == .none && !failed.contains(.closeClient))
        #expect(machine.clientBytes(bytes("GET /3 HTTP/1.1\r\n\r\n"), now: now) == [.connectOrigin])
    }

    /// The origin going away mid-response cuts the client off; before any response it is a 502;
    /// a broken response is a 502 too.
    @Test func anOriginThatGoesAwayOrBreaksIsA502OrACutOff() {
        var before = ready("GET / HTTP/1.1\r\n\r\n").0
        #expect(toClient(before.originClosed()).contains("502 Bad Gateway: the origin closed the connection before answering"))
        var during = ready("GET / HTTP/1.1\r\n\r\n").0
        _ = during.originBytes(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
        let cut = during.originClosed()
        #expect(cut.contains(.closeClient) && records(cut).first?.1 == "the origin closed the connection in the middle of the response")
        var broken = ready("GET / HTTP/1.1\r\n\r\n").0
        let garbage = broken.originBytes(bytes("SSH-2.0-OpenSSH\r\n\r\n"))
        #expect(toClient(garbage).hasPrefix("HTTP/1.1 502 Bad Gateway\r\n") && garbage.contains(.closeOrigin))
        var unasked = Machine(client: client, scheme: "http")
        _ = unasked.clientBytes(bytes("GET / HTTP/1.1\r\n\r\n"), now: now)
        _ = unasked.originConnected()
        _ = unasked.originBytes(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        #expect(unasked.originBytes(bytes("HTTP/1.1 200 OK\r\n\r\n")).contains(.closeOrigin), "a response nobody asked for")
    }

    /// An origin that closes after a response: requests already sent on it get a 502 each.
    @Test func anOriginClosingAfterAResponseFailsThoseSentAfterIt() {
        var (machine, _) = ready("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        let actions = machine.originBytes(bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
        #expect(records(actions).map { $0.0.status } == [200, 502])
        #expect(actions.contains(.closeOrigin) && machine.origin == .none)
    }

    /// The client leaving records what was open and closes the origin.
    @Test func theClientLeavingRecordsWhatWasOpen() {
        var (machine, _) = ready("GET /1 HTTP/1.1\r\n\r\n")
        let actions = machine.clientClosed()
        #expect(records(actions).map { $0.1 } == ["the client closed before the response was complete"])
        #expect(actions.last == .closeOrigin)
    }
}
