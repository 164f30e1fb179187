import EdgeModel
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeProxy

/// The HTTP forwarder's decisions, request by request, with no socket in sight.
@Suite struct HTTPForwardingStateMachineTests {
    let client = IPAddress("198.18.10.1")!
    let now = NIODeadline.now()

    func head(_ uri: String, _ headers: [(String, String)] = [], version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    func forwardedHead(_ actions: [HTTPForwardingStateMachine.Action]) -> HTTPRequestHead? {
        for case .sendToOrigin(.head(let head)) in actions { return head }
        return nil
    }

    @Test func theClientsAddressAndSchemeAreAddedAndConnectionHeadersDropped() {
        let forwarded = HTTPForwardingStateMachine.forwarded(
            head("/a", [("Host", "www.example"), ("X-Forwarded-For", "203.0.113.9"), ("Connection", "close"), ("Keep-Alive", "5")]),
            client: client, scheme: "https")
        #expect(forwarded.headers["X-Forwarded-For"] == ["203.0.113.9, 198.18.10.1"])
        #expect(forwarded.headers["CF-Connecting-IP"] == ["198.18.10.1"])
        #expect(forwarded.headers["X-Forwarded-Proto"] == ["https"])
        #expect(forwarded.headers["Host"] == ["www.example"])
        #expect(forwarded.headers["Connection"].isEmpty && forwarded.headers["Keep-Alive"].isEmpty)
        let mapped = HTTPForwardingStateMachine.forwarded(head("/"), client: IPAddress("::ffff:198.18.10.1")!, scheme: "http")
        #expect(mapped.headers["CF-Connecting-IP"] == ["198.18.10.1"], "an IPv4-mapped client is named as IPv4")
    }

    /// The first request opens the origin; what comes meanwhile waits and then goes in order.
    @Test func requestsWaitForTheOriginThenGoInOrderAndResponsesComeBackInOrder() {
        var machine = HTTPForwardingStateMachine(client: client, scheme: "http")
        #expect(machine.requestHead(head("/1"), now: now) == [.connectOrigin])
        #expect(machine.requestEnd().isEmpty)
        #expect(machine.requestHead(head("/2"), now: now).isEmpty, "pipelined while the origin opens")
        #expect(machine.requestEnd().isEmpty)
        let sent = machine.originConnected()
        #expect(sent.count == 4)
        #expect(forwardedHead(sent)?.uri == "/1")
        #expect(machine.requestHead(head("/3"), now: now).count == 1, "straight on once the origin is ready")

        let ok = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "2", "Connection": "keep-alive"])
        guard case .sendToClient(.head(let first)) = machine.responseHead(ok).first else {
            Issue.record("no response head for the client")
            return
        }
        #expect(first.headers["Connection"].isEmpty, "the origin's connection headers are its own")
        _ = machine.responseBody(ByteBuffer(string: "ok"))
        let ended = machine.responseEnd()
        guard case .record(let exchange, nil) = ended.last else {
            Issue.record("no event for the first request: \(ended)")
            return
        }
        #expect(exchange.uri == "/1" && exchange.status == 200 && exchange.bytesOut == 2)
        #expect(machine.exchanges.map(\.uri) == ["/2", "/3"])
    }

    /// An origin that cannot be reached: each open request is answered, in order, and the next
    /// request tries again.
    @Test func anUnreachableOriginAnswersEachOpenRequest() {
        var machine = HTTPForwardingStateMachine(client: client, scheme: "http")
        _ = machine.requestHead(head("/1"), now: now)
        _ = machine.requestHead(head("/2"), now: now)
        let failed = machine.originConnectFailed(.gatewayTimeout, message: "connect timed out")
        #expect(failed.filter { if case .answer(.gatewayTimeout, _) = $0 { true } else { false } }.count == 2)
        #expect(machine.exchanges.isEmpty && machine.origin == .none)
        #expect(machine.requestHead(head("/3"), now: now) == [.connectOrigin])
    }

    /// HTTP/1.0 (or `Connection: close`) closes after its response, and says so.
    @Test func aClientThatAsksToCloseIsClosedAfterItsResponse() {
        var machine = HTTPForwardingStateMachine(client: client, scheme: "http")
        _ = machine.requestHead(head("/", version: .http1_0), now: now)
        _ = machine.originConnected()
        guard case .sendToClient(.head(let response)) = machine.responseHead(HTTPResponseHead(version: .http1_1, status: .ok)).first else {
            Issue.record("no head")
            return
        }
        #expect(response.headers["Connection"] == ["close"])
        #expect(machine.responseEnd().last == .closeClient)
    }

    /// The origin going away mid-response cuts the client off; before any response, it is a 502.
    @Test func anOriginThatGoesAwayIsA502OrACutOff() {
        var before = HTTPForwardingStateMachine(client: client, scheme: "http")
        _ = before.requestHead(head("/"), now: now)
        _ = before.originConnected()
        #expect(before.originClosed().first == .answer(.badGateway, message: "the origin closed the connection before answering"))
        var during = HTTPForwardingStateMachine(client: client, scheme: "http")
        _ = during.requestHead(head("/"), now: now)
        _ = during.originConnected()
        _ = during.responseHead(HTTPResponseHead(version: .http1_1, status: .ok))
        #expect(during.originClosed().last == .closeClient)
        var idle = HTTPForwardingStateMachine(client: client, scheme: "http")
        _ = idle.requestHead(head("/"), now: now)
        _ = idle.originConnected()
        _ = idle.responseHead(HTTPResponseHead(version: .http1_1, status: .ok))
        _ = idle.responseEnd()
        #expect(idle.originClosed().isEmpty, "an idle origin connection may end; the next request opens another")
    }
}
