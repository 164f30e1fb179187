import EdgeModel
import NIOCore

/// Response-rate limiting over UDP, as NSD and BIND do it: each client prefix (/24 for IPv4,
/// /56 for IPv6) may have `rate` answers a second (a bucket that refills continuously, holding
/// a second's worth); over that, every `slip`-th query gets a truncated answer, so a real
/// client retries over TCP, and the rest are dropped, so a forged source gains an attacker
/// little. Pure: the caller gives the time.
public struct ResponseRateLimiter: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Answers a second per prefix. Default 200; 0 turns limiting off.
        public var rate: Int
        /// Every this many limited queries, one truncated answer. Default 2; 0 drops them all.
        public var slip: Int
        /// Most prefixes tracked; when full, those with full buckets are forgotten. Default 65,536.
        public var maximumPrefixes: Int

        public init(rate: Int = 200, slip: Int = 2, maximumPrefixes: Int = 65_536) {
            self.rate = rate
            self.slip = slip
            self.maximumPrefixes = maximumPrefixes
        }
    }

    public enum Decision: Sendable, Equatable {
        case answer
        /// Answer with TC set and no records.
        case slip
        case drop
    }

    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
        var limited = 0
    }

    public let settings: Settings
    private var buckets: [IPAddress: Bucket] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    public var trackedPrefixes: Int { buckets.count }

    public mutating func decide(for client: IPAddress, now: NIODeadline) -> Decision {
        guard settings.rate > 0 else { return .answer }
        let key = Self.prefix(of: client.unmapped)
        let capacity = Double(settings.rate)
        var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
        let elapsed = Double(max(0, (now - bucket.updated).nanoseconds)) / 1e9
        bucket.tokens = min(capacity, bucket.tokens + elapsed * capacity)
        bucket.updated = now
        let decision: Decision
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            decision = .answer
        } else {
            bucket.limited += 1
            decision = settings.slip > 0 && bucket.limited % settings.slip == 0 ? .slip : .drop
        }
        if buckets[key] == nil, buckets.count >= settings.maximumPrefixes { forgetIdle(now: now) }
        buckets[key] = bucket
        return decision
    }

    /// Drops prefixes whose bucket has refilled: they would start full anyway.
    private mutating func forgetIdle(now: NIODeadline) {
        buckets = buckets.filter { _, bucket in
            Double((now - bucket.updated).nanoseconds) / 1e9 * Double(settings.rate) + bucket.tokens < Double(settings.rate)
        }
        // Still full of busy prefixes: start over rather than grow.
        if buckets.count >= settings.maximumPrefixes { buckets = [:] }
    }

    static func prefix(of address: IPAddress) -> IPAddress {
        switch address {
        case .v4(let value): return .v4(value & 0xFFFF_FF00)
        case .v6(let value): return .v6(value & ~((UInt128(1) << 72) - 1))
        }
    }
}
