import Testing

@testable import EdgeProxy

/// A UDP flow's decisions, event by event.
@Suite struct UDPFlowStateMachineTests {
    @Test func datagramsWaitWhileTheOriginSocketOpensThenGoStraight() {
        var machine = UDPFlowStateMachine(pendingLimit: 2)
        #expect(machine.clientDatagram() == .queue)
        #expect(machine.clientDatagram() == .queue)
        #expect(machine.clientDatagram() == .drop, "no more than the limit waits")
        #expect(machine.originOpened() == .flush)
        #expect(machine.clientDatagram() == .forward)
        #expect(machine.originReply() == .deliver)
        #expect(machine.expired() == .close(.ok), "an answered flow that goes idle ended well")
        #expect(machine.clientDatagram() == .drop)
        #expect(machine.originReply() == .none)
    }

    @Test func aFlowTheOriginNeverAnsweredEndsAsNoResponse() {
        var machine = UDPFlowStateMachine(pendingLimit: 8)
        _ = machine.clientDatagram()
        _ = machine.originOpened()
        #expect(machine.expired() == .close(.originNoResponse))
    }

    @Test func evictionAndAClosedListenerEndFlowsWithTheirStatus() {
        var evicted = UDPFlowStateMachine(pendingLimit: 8)
        _ = evicted.originOpened()
        #expect(evicted.evicted() == .close(.flowEvicted))
        #expect(evicted.listenerClosed() == .none, "ends once")
        var stopped = UDPFlowStateMachine(pendingLimit: 8)
        _ = stopped.originOpened()
        #expect(stopped.listenerClosed() == .close(.ok))
    }

    /// A flow that ends before its origin socket opens records nothing, and the late socket is closed.
    @Test func aSocketThatOpensAfterTheEndIsClosed() {
        var machine = UDPFlowStateMachine(pendingLimit: 8)
        _ = machine.clientDatagram()
        #expect(machine.evicted() == .close(nil))
        #expect(machine.originOpened() == .close(nil))
        var failed = UDPFlowStateMachine(pendingLimit: 8)
        #expect(failed.originFailed() == .close(nil))
        #expect(failed.clientDatagram() == .drop)
    }
}
