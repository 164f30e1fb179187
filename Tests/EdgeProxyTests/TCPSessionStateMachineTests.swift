import EdgeModel
import Testing

@testable import EdgeProxy

/// The session's decisions, event by event, with no socket in sight.
@Suite struct TCPSessionStateMachineTests {
    let a = Endpoint(IPAddress("192.0.2.1")!, 7)
    let b = Endpoint(IPAddress("192.0.2.2")!, 7)
    let refused = TCPSessionStateMachine.Failure(status: .originRefused, message: "refused")

    @Test func anAllowedClientIsResolvedConnectedAndJoined() {
        var machine = TCPSessionStateMachine()
        #expect(machine.accepted(allowed: true, rule: nil) == .resolve)
        #expect(machine.resolved([a, b]) == .connect(a))
        #expect(machine.connected() == .join(origin: a))
        #expect(machine.state == .relaying(origin: a))
    }

    @Test func aBlockedClientIsClosedWithTheRule() {
        var machine = TCPSessionStateMachine()
        #expect(machine.accepted(allowed: false, rule: "block 10.0.0.0/8") == .close(.filtered(rule: "block 10.0.0.0/8")))
        #expect(machine.resolved([a]) == .none, "nothing happens after the close")
    }

    @Test func failoverTriesEachCandidateThenGivesUpWithTheLastError() {
        var machine = TCPSessionStateMachine()
        _ = machine.accepted(allowed: true, rule: nil)
        _ = machine.resolved([a, b])
        #expect(machine.connectFailed(refused) == .connect(b))
        let timeout = TCPSessionStateMachine.Failure(status: .originTimeout, message: "timed out")
        #expect(machine.connectFailed(timeout) == .close(.originFailed(timeout)))
        #expect(machine.state == .closed)
    }

    /// A relay that fails costs nothing but a second attempt straight to the same origin.
    @Test func aFailedRelayIsRetriedStraightOnce() {
        var machine = TCPSessionStateMachine()
        _ = machine.accepted(allowed: true, rule: nil)
        _ = machine.resolved([a, b])
        #expect(machine.connectFailed(refused, relayed: true) == .connectDirect(a))
        #expect(machine.connectFailed(refused, relayed: true) == .connect(b), "straight failed too: the next origin")
        #expect(machine.connected() == .join(origin: b))
    }

    @Test func noCandidateAndAFailedResolutionClose() {
        var none = TCPSessionStateMachine()
        _ = none.accepted(allowed: true, rule: nil)
        #expect(none.resolved([]) == .close(.originFailed(.init(status: .originRefused, message: "no origin"))))
        var failed = TCPSessionStateMachine()
        _ = failed.accepted(allowed: true, rule: nil)
        let nx = TCPSessionStateMachine.Failure(status: .resolveFailed, message: "NXDOMAIN")
        #expect(failed.resolveFailed(nx) == .close(.resolveFailed(nx)))
    }

    /// A client that leaves while the origin leg opens: no retry, and the late leg is closed.
    @Test func aClientThatLeavesStopsEverything() {
        var machine = TCPSessionStateMachine()
        _ = machine.accepted(allowed: true, rule: nil)
        _ = machine.resolved([a, b])
        #expect(machine.clientClosed() == .none)
        #expect(machine.connectFailed(refused) == .none, "no further candidate is tried")
        #expect(machine.connected() == .closeOrigin)
    }

    // MARK: Edge TLS

    let hello = TLSClientHello(serverName: "app.example", applicationProtocols: ["h2", "http/1.1"], versions: [0x0304])

    /// The hello first, then the origin leg, then the client's handshake, then the relay.
    @Test func aTLSClientIsAnsweredOnlyOnceTheOriginLegIsReady() {
        var machine = TCPSessionStateMachine(edgeTLS: true)
        #expect(machine.accepted(allowed: true, rule: nil) == .readHello)
        #expect(machine.resolved([a]) == .none, "nothing is resolved before the hello")
        #expect(machine.helloRead(hello) == .resolve)
        #expect(machine.hello == hello, "kept for the origin leg's SNI and ALPN")
        #expect(machine.resolved([a, b]) == .connect(a))
        #expect(machine.connected() == .secureClient(origin: a))
        #expect(machine.clientSecured() == .join(origin: a))
        #expect(machine.state == .relaying(origin: a))
    }

    @Test func aBadHelloOrAnUnusableConfigurationCloses() {
        let malformed = TCPSessionStateMachine.Failure(status: .clientHandshakeFailed, message: "plain text")
        var machine = TCPSessionStateMachine(edgeTLS: true)
        _ = machine.accepted(allowed: true, rule: nil)
        #expect(machine.helloFailed(malformed) == .close(.tlsFailed(malformed, origin: nil)))
        #expect(machine.helloRead(hello) == .none)

        let unusable = TCPSessionStateMachine.Failure(status: .tlsConfiguration, message: "no key")
        var broken = TCPSessionStateMachine(edgeTLS: true)
        #expect(broken.accepted(allowed: true, rule: nil, tlsUnusable: unusable) == .close(.tlsFailed(unusable, origin: nil)))
        var blocked = TCPSessionStateMachine(edgeTLS: true)
        #expect(blocked.accepted(allowed: false, rule: "block", tlsUnusable: unusable) == .close(.filtered(rule: "block")), "rules first")
    }

    /// A refused origin certificate is not a connect failure: the next address would show the same.
    @Test func anOriginHandshakeFailureEndsTheConnectionWithoutFailover() {
        let invalid = TCPSessionStateMachine.Failure(status: .originCertificateInvalid, message: "expired")
        var machine = TCPSessionStateMachine(edgeTLS: true)
        _ = machine.accepted(allowed: true, rule: nil)
        _ = machine.helloRead(hello)
        _ = machine.resolved([a, b])
        #expect(machine.originHandshakeFailed(invalid) == .close(.tlsFailed(invalid, origin: a)))
        #expect(machine.connectFailed(refused) == .none)
    }

    @Test func aClientHandshakeFailureAfterTheOriginLegOpenedCloses() {
        let failed = TCPSessionStateMachine.Failure(status: .clientHandshakeFailed, message: "no shared cipher")
        var machine = TCPSessionStateMachine(edgeTLS: true)
        _ = machine.accepted(allowed: true, rule: nil)
        _ = machine.helloRead(hello)
        _ = machine.resolved([a])
        _ = machine.connected()
        #expect(machine.clientHandshakeFailed(failed) == .close(.tlsFailed(failed, origin: a)))
        #expect(machine.clientSecured() == .none)
    }

    /// A client that leaves before or during its handshake is still told of, as a TLS error.
    @Test func aClientLeavingMidHandshakeIsATLSError() {
        var early = TCPSessionStateMachine(edgeTLS: true)
        _ = early.accepted(allowed: true, rule: nil)
        guard case .close(.tlsFailed(let failure, nil)) = early.clientClosed() else {
            Issue.record("no TLS error for a client gone before its hello")
            return
        }
        #expect(failure.status == .clientHandshakeFailed)
        var late = TCPSessionStateMachine(edgeTLS: true)
        _ = late.accepted(allowed: true, rule: nil)
        _ = late.helloRead(hello)
        _ = late.resolved([a])
        _ = late.connected()
        guard case .close(.tlsFailed(_, let origin)) = late.clientClosed() else {
            Issue.record("no TLS error for a client gone mid-handshake")
            return
        }
        #expect(origin == a)
        #expect(late.clientClosed() == .none, "once only")
    }
}
