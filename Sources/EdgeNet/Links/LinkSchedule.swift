import EdgeModel

/// When each packet or chunk sent into one direction of a link comes out of the other end:
/// it waits for the line to be free (bandwidth), crosses it (latency plus jitter), and never
/// overtakes what went before. Loss drops a datagram; on a stream it costs a retransmission.
public struct LinkSchedule: Sendable {
    public enum Delivery: Sendable, Hashable {
        /// Deliver at this uptime, in nanoseconds.
        case at(UInt64)
        case lost
    }

    public var shape: LinkShape
    /// A datagram that would wait longer than this for the line is dropped (a full queue).
    public var queueLimit: UInt64 = 250_000_000
    /// Linux never retransmits sooner than this.
    static let minimumRetransmissionTimeout: UInt64 = 200_000_000
    private var lineFreeAt: UInt64 = 0
    private var lastArrival: UInt64 = 0
    private var random: SplitMix64

    public init(shape: LinkShape, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        self.shape = shape
        self.random = SplitMix64(seed: seed)
    }

    /// `reliable` is true for stream bytes, which are never lost, only late.
    public mutating func schedule(bytes: Int, now: UInt64, reliable: Bool) -> Delivery {
        let latency = UInt64(max(0, shape.latency.nanoseconds))
        var extra: UInt64 = 0
        if shape.loss > 0, Double.random(in: 0..<1, using: &random) < shape.loss {
            guard reliable else { return .lost }
            extra = Self.minimumRetransmissionTimeout + 2 * latency
        }
        let jitter = max(0, shape.jitter.nanoseconds)
        let wobble = jitter > 0 ? Int64.random(in: -jitter...jitter, using: &random) : 0
        var sent = now
        if let bandwidth = shape.bandwidth, bandwidth > 0 {
            let start = max(now, lineFreeAt)
            if !reliable, start - now > queueLimit { return .lost }
            lineFreeAt = start + UInt64(bytes) * 8 * 1_000_000_000 / bandwidth
            sent = lineFreeAt
        }
        let crossing = UInt64(max(0, Int64(latency) + wobble)) + extra
        // Strictly later than the one before, so equal deadlines cannot swap order.
        lastArrival = max(sent + crossing, lastArrival + 1)
        return .at(lastArrival)
    }
}

extension Duration {
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// A small seedable generator, so a test can replay the same losses and jitter.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
