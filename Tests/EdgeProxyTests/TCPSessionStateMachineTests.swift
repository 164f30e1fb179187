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
}
