import EdgeModel
import Testing

@testable import EdgeNet

/// When packets come out of a link: latency, bandwidth, order, loss and jitter.
@Suite struct LinkScheduleTests {
    static let ms: UInt64 = 1_000_000

    @Test func aPacketArrivesOneLatencyLater() {
        var link = LinkSchedule(shape: LinkShape(latency: .milliseconds(20)), seed: 1)
        #expect(link.schedule(bytes: 100, now: 1_000 * Self.ms, reliable: false) == .at(1_020 * Self.ms))
    }

    @Test func bandwidthSpacesPacketsByTheirSerialisationTime() {
        // 1500 bytes at 12 Mbit/s take 1 ms on the line.
        var link = LinkSchedule(shape: LinkShape(latency: .milliseconds(5), bandwidth: 12_000_000), seed: 1)
        let first = link.schedule(bytes: 1500, now: 0, reliable: false)
        let second = link.schedule(bytes: 1500, now: 0, reliable: false)
        #expect(first == .at(6 * Self.ms))
        #expect(second == .at(7 * Self.ms))
    }

    @Test func aFullQueueDropsDatagramsButStreamBytesWait() {
        var link = LinkSchedule(shape: LinkShape(bandwidth: 8_000_000), seed: 1)
        // 1 MB at 8 Mbit/s is a second of queue; the limit is 250 ms.
        _ = link.schedule(bytes: 1_000_000, now: 0, reliable: true)
        #expect(link.schedule(bytes: 100, now: 0, reliable: false) == .lost)
        guard case .at(let late) = link.schedule(bytes: 100, now: 0, reliable: true) else {
            Issue.record("stream bytes are never dropped")
            return
        }
        #expect(late > 1_000 * Self.ms)
    }

    @Test func jitterNeverReordersOrGoesBelowZero() {
        var link = LinkSchedule(shape: LinkShape(latency: .milliseconds(1), jitter: .milliseconds(5)), seed: 7)
        var last: UInt64 = 0
        var spread: Set<UInt64> = []
        for step in 0..<1_000 {
            guard case .at(let arrival) = link.schedule(bytes: 64, now: UInt64(step) * 100_000, reliable: false) else {
                Issue.record("no loss configured")
                return
            }
            #expect(arrival > last)
            #expect(arrival >= UInt64(step) * 100_000)
            spread.insert(arrival - UInt64(step) * 100_000)
            last = arrival
        }
        #expect(spread.count > 100, "jitter should vary the delay")
    }

    @Test(arguments: [0.01, 0.1, 0.5])
    func lossDropsAboutThatShareOfDatagrams(loss: Double) {
        var link = LinkSchedule(shape: LinkShape(loss: loss), seed: 42)
        let lost = (0..<20_000).filter { link.schedule(bytes: 64, now: UInt64($0), reliable: false) == .lost }.count
        let share = Double(lost) / 20_000
        #expect(abs(share - loss) < max(0.005, loss * 0.1), "lost \(share) for loss \(loss)")
    }

    @Test func aLostStreamChunkCostsARetransmissionTimeout() {
        var link = LinkSchedule(shape: LinkShape(latency: .milliseconds(10), loss: 1), seed: 3)
        #expect(link.schedule(bytes: 10, now: 0, reliable: true) == .at(230 * Self.ms))
    }
}
