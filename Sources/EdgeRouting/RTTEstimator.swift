/// What one host knows of its path to another: smoothed round trip, its variation, the share of
/// probes lost lately, and whether the last probe was answered. This is what edges tell each other.
public struct PathMeasurement: Sendable, Hashable {
    public var rtt: Duration
    public var variation: Duration
    /// Fraction of recent probes lost, 0...1.
    public var loss: Double
    /// False once a probe went unanswered, until one is answered again.
    public var answering: Bool

    public init(rtt: Duration, variation: Duration = .zero, loss: Double = 0, answering: Bool = true) {
        self.rtt = rtt
        self.variation = variation
        self.loss = loss
        self.answering = answering
    }
}

/// Turns probe results into a `PathMeasurement`. The round trip is smoothed as TCP does
/// (RFC 6298: gains 1/8 and 1/4), so one late probe does not move it; a level shift (two
/// samples in a row outside the usual band, on the same side) is taken at once, so a path that
/// got slower or faster is seen after two probes instead of a dozen. Loss is counted over the
/// last `window` probes.
public struct RTTEstimator: Sendable, Hashable {
    public private(set) var measurement: PathMeasurement?
    public let window: Int
    private var outcomes: [Bool] = []
    private var previousOutlier: Duration?
    private var answeredOnce = false

    /// The last sample fell outside the usual band and waits for the next to confirm it: probe
    /// again now rather than at the next interval.
    public var isUnconfirmed: Bool { previousOutlier != nil }

    public init(window: Int = 20) {
        self.window = window
    }

    /// A probe answered after `sample`.
    public mutating func answered(after sample: Duration) {
        remember(lost: false)
        guard answeredOnce, var current = measurement else {
            answeredOnce = true
            measurement = PathMeasurement(rtt: sample, variation: .zero, loss: loss)
            return
        }
        let band = max(current.variation * 4, .milliseconds(1), current.rtt * 3 / 100)
        let deviation = sample - current.rtt
        if deviation > band || deviation < .zero - band {
            if let previous = previousOutlier, (previous > current.rtt) == (sample > current.rtt) {
                // Confirmed: the path itself changed.
                current.rtt = (previous + sample) / 2
                current.variation = distance(previous, sample) / 2
                previousOutlier = nil
                current.loss = loss
                current.answering = true
                measurement = current
                return
            }
            // Held back until the next sample says whether the path changed or this was noise.
            previousOutlier = sample
            current.loss = loss
            current.answering = true
            measurement = current
            return
        } else {
            previousOutlier = nil
        }
        current.variation = current.variation * 3 / 4 + distance(deviation, .zero) / 4
        current.rtt = current.rtt * 7 / 8 + sample / 8
        current.loss = loss
        current.answering = true
        measurement = current
    }

    /// A probe went unanswered: the path is taken as not answering until the next reply. Before
    /// the first answer the far end may simply not be up yet, so that counts as no loss.
    public mutating func lost() {
        if answeredOnce { remember(lost: true) }
        var current = measurement ?? PathMeasurement(rtt: .zero, answering: false)
        current.loss = loss
        current.answering = false
        measurement = current
    }

    private mutating func remember(lost: Bool) {
        outcomes.append(lost)
        if outcomes.count > window { outcomes.removeFirst(outcomes.count - window) }
    }

    private var loss: Double {
        outcomes.isEmpty ? 0 : Double(outcomes.filter { $0 }.count) / Double(outcomes.count)
    }
}

func distance(_ a: Duration, _ b: Duration) -> Duration { a < b ? b - a : a - b }
