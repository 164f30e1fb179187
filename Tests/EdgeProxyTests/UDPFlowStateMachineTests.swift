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

/// The order flows were last used in, kept in O(1) per use.
@Suite struct RecencyListTests {
    @Test func theLeastRecentlyUsedIsAtHandThroughTouchesAndRemovals() {
        var list = RecencyList<Int>()
        #expect(list.oldest == nil)
        for key in 1...4 { list.touch(key) }
        #expect(list.oldest == 1 && list.newest == 4)
        list.touch(1)
        #expect(list.oldest == 2 && list.newest == 1)
        list.remove(2)
        #expect(list.oldest == 3)
        list.remove(1)
        #expect(list.newest == 4)
        list.remove(9)
        list.touch(4)
        #expect(list.count == 2 && list.oldest == 3 && list.newest == 4)
        list.remove(3)
        list.remove(4)
        #expect(list.oldest == nil && list.newest == nil && list.count == 0)
        // Many keys, used in a known order: the oldest is always the right one.
        var many = RecencyList<Int>()
        for key in 0..<10_000 { many.touch(key) }
        for key in stride(from: 0, to: 10_000, by: 2) { many.touch(key) }
        #expect(many.oldest == 1)
        many.remove(1)
        #expect(many.oldest == 3)
    }
}
