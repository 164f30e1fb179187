import EdgeModel
import Testing

@testable import EdgeProxy

/// A node's summary is right however many events it saw, in bounded memory: counts and bytes
/// exact, duration percentiles exact while few and within 2% after.
@Suite struct EventSummaryTests {
    func event(_ index: Int, duration: Double) -> ProxyEvent {
        ProxyEvent(
            event: .disconnect, time: Double(index), app: application("echo", "tcp/7", origins: ["tcp://198.51.100.1:7"]), node: "lhr",
            client: Endpoint(IPAddress("198.18.0.3")!, UInt16(truncatingIfNeeded: index)), edge: Endpoint(IPAddress("198.19.0.1")!, 7),
            bytesIn: 10, bytesOut: 20, durationMs: duration, status: .ok)
    }

    @Test func fewDurationsGiveExactPercentiles() {
        var sketch = DurationSketch()
        for value in [5.0, 1.0, 3.0, 2.0, 4.0] { sketch.add(value) }
        #expect(sketch.percentile(0.5) == 3)
        #expect(sketch.percentile(0.9) == 5)
        #expect(sketch.percentile(0.01) == 1)
    }

    @Test func manyDurationsGivePercentilesWithinTwoPercent() {
        var sketch = DurationSketch()
        // 0.01 ms to 1000 ms, shuffled: the true nearest-rank percentile of i/100 is known.
        for value in (1...100_000).shuffled() { sketch.add(Double(value) / 100) }
        for (fraction, truth) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (0.001, 1.0)] {
            let found = sketch.percentile(fraction)!
            #expect(abs(found - truth) / truth <= 0.02, "p\(fraction): \(found) for \(truth)")
        }
        #expect(sketch.count == 100_000)
    }

    @Test func aLogKeepsRecentEventsAndSummarisesAll() {
        let log = EventLog(retained: 100)
        for index in 0..<50_000 { log.record(event(index, duration: Double(index % 1000) + 1)) }
        #expect(log.count(.disconnect) == 50_000)
        #expect(log.events.count == 100)
        #expect(log.events.map(\.time) == (49_900..<50_000).map(Double.init), "the last ones, oldest first")
        let figures = try! #require(log.summary().groups.first?.figures)
        #expect(figures.count == 50_000)
        #expect(figures.bytesIn == 500_000)
        #expect(figures.bytesOut == 1_000_000)
        #expect(abs(figures.durationMedian! - 500) / 500 <= 0.02)
    }
}
