import NIOCore

/// What the server sent back on one replayed flow, and who waits for how much of it. Touched
/// only on its channel's event loop (the handlers run there, and `wait` hops there).
final class ReplyLog: @unchecked Sendable {
    let loop: any EventLoop
    let isStream: Bool
    /// Bytes kept for comparison at most; more is counted, not kept.
    let keep: Int
    private(set) var bytes: [UInt8] = []
    private(set) var datagrams: [[UInt8]] = []
    /// Bytes (TCP) or datagrams (UDP) received.
    private(set) var count = 0
    private(set) var reads = 0
    private(set) var bytesReceived = 0
    private(set) var ended = false
    private(set) var failure: String?
    private var waiters: [(count: Int, promise: EventLoopPromise<Void>)] = []
    /// After each read: the count so far and when it came (at most `maxArrivals` kept).
    private var arrivals: [(count: Int, at: ContinuousClock.Instant)] = []
    static let maxArrivals = 100_000

    init(loop: any EventLoop, isStream: Bool, keep: Int) {
        self.loop = loop
        self.isStream = isStream
        self.keep = keep
    }

    func add(_ buffer: ByteBuffer) {
        reads += 1
        bytesReceived += buffer.readableBytes
        if isStream {
            count += buffer.readableBytes
            if bytes.count < keep { bytes += buffer.readableBytesView.prefix(keep - bytes.count) }
        } else {
            count += 1
            if datagrams.count < keep { datagrams.append(Array(buffer.readableBytesView)) }
        }
        if arrivals.count < Self.maxArrivals { arrivals.append((count, .now)) }
        wake()
    }

    func end(_ error: (any Error)? = nil) {
        if let error, failure == nil { failure = "\(error)" }
        ended = true
        wake()
    }

    /// Succeeds once `count` is reached, the flow ended, or `timeout` passed, whichever is first.
    func wait(for wanted: Int, timeout: TimeAmount) -> EventLoopFuture<Void> {
        loop.flatSubmit {
            if self.count >= wanted || self.ended { return self.loop.makeSucceededVoidFuture() }
            let promise = self.loop.makePromise(of: Void.self)
            self.waiters.append((wanted, promise))
            let timer = self.loop.scheduleTask(in: timeout) { promise.succeed() }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            return promise.futureResult
        }
    }

    /// When the count first reached `wanted`; nil when it has not (or is no longer known).
    func reached(_ wanted: Int) -> EventLoopFuture<ContinuousClock.Instant?> {
        loop.submit {
            guard let last = self.arrivals.last, last.count >= wanted else { return nil }
            // Counts only grow: the first arrival at or past `wanted`.
            var low = 0
            var high = self.arrivals.count - 1
            while low < high {
                let middle = (low + high) / 2
                if self.arrivals[middle].count >= wanted { high = middle } else { low = middle + 1 }
            }
            return self.arrivals[low].at
        }
    }

    /// The state as it stands, read on the loop.
    func snapshot() -> EventLoopFuture<Snapshot> {
        loop.submit {
            Snapshot(
                bytes: self.bytes, datagrams: self.datagrams, count: self.count, reads: self.reads, bytesReceived: self.bytesReceived,
                ended: self.ended, failure: self.failure)
        }
    }

    struct Snapshot: Sendable {
        var bytes: [UInt8]
        var datagrams: [[UInt8]]
        var count: Int
        var reads: Int
        var bytesReceived: Int
        var ended: Bool
        var failure: String?
    }

    private func wake() {
        var still: [(count: Int, promise: EventLoopPromise<Void>)] = []
        for waiter in waiters {
            if count >= waiter.count || ended { waiter.promise.succeed() } else { still.append(waiter) }
        }
        waiters = still
    }
}
