import Foundation

/// Percentiles of durations in bounded memory: the values themselves while there are few, then
/// counts in buckets 2% wide on a log scale, so a percentile is within 2% of the true one
/// however many values came (about 1,200 buckets cover 1 µs to 3 hours).
public struct DurationSketch: Sendable, Hashable {
    /// Kept exactly up to this many values.
    static let exactLimit = 1_000
    static let growth = 1.02
    static let smallest = 0.001

    private var exact: [Double]? = []
    private var buckets: [Int: Int] = [:]
    /// Values at or below `smallest` ms.
    private var zeros = 0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ milliseconds: Double) {
        count += 1
        if exact != nil {
            exact!.append(milliseconds)
            guard exact!.count > Self.exactLimit else { return }
            let values = exact!
            exact = nil
            for value in values { bucket(value) }
            return
        }
        bucket(milliseconds)
    }

    private mutating func bucket(_ value: Double) {
        guard value > Self.smallest else {
            zeros += 1
            return
        }
        buckets[Int((log(value / Self.smallest) / log(Self.growth)).rounded(.down)), default: 0] += 1
    }

    /// Nearest-rank percentile (exact while few values were added).
    public func percentile(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        if let exact { return EventSummary.percentile(exact.sorted(), fraction) }
        let rank = max(1, min(count, Int((fraction * Double(count)).rounded(.up))))
        if rank <= zeros { return 0 }
        var seen = zeros
        for index in buckets.keys.sorted() {
            seen += buckets[index]!
            // The middle of the bucket on the log scale.
            if seen >= rank { return Self.smallest * pow(Self.growth, Double(index) + 0.5) }
        }
        return nil
    }
}
