import Foundation

/// Writes events as JSON lines on a thread of its own, so an event loop that records one never
/// waits for encoding or for a slow reader of the output (a runner behind a pipe). Lines waiting
/// together go out in writes of whole lines up to `PIPE_BUF` bytes (a longer line alone), which
/// a pipe keeps whole next to other writers of it, in one system call for many events. Woken by
/// an event, the writer lets others join it for up to `linger` (or until `batch` are waiting, or
/// someone flushes): one wake-up and one write for many events rather than one each, which under
/// a load of short connections is most of what writing events costs. Events wait in order; only
/// when `capacity` are waiting does `enqueue` wait for the writer.
final class EventWriter: Sendable {
    private let shared: Shared

    /// The queue and counts, guarded by the condition.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var pending: [ProxyEvent] = []
        var queued = 0
        var written = 0
        var stopped = false
        /// Callers of `flush` waiting: the writer does not linger for them.
        var flushing = 0
    }

    /// How long the writer lets events gather once one is waiting.
    static let linger = 0.002
    /// Events that end the lingering at once.
    static let batch = 256

    init(output: FileHandle, capacity: Int = 65_536) {
        let shared = Shared()
        self.shared = shared
        self.capacity = capacity
        let thread = Thread {
            var line: [UInt8] = []
            line.reserveCapacity(512)
            var chunk: [UInt8] = []
            chunk.reserveCapacity(Self.writeSize)
            while let batch = Self.take(shared) {
                for event in batch {
                    line.removeAll(keepingCapacity: true)
                    event.appendJSONLine(to: &line)
                    if !chunk.isEmpty, chunk.count + line.count > Self.writeSize {
                        try? output.writeAll(Data(chunk))
                        chunk.removeAll(keepingCapacity: true)
                    }
                    chunk += line
                }
                if !chunk.isEmpty {
                    try? output.writeAll(Data(chunk))
                    chunk.removeAll(keepingCapacity: true)
                }
                shared.condition.lock()
                shared.written += batch.count
                shared.condition.broadcast()
                shared.condition.unlock()
            }
        }
        thread.name = "edgesim events"
        thread.start()
    }

    private let capacity: Int
    /// The most a pipe writes in one piece (POSIX PIPE_BUF on Linux).
    static let writeSize = 4096

    /// Everything waiting, once there is something; nil once stopped and empty.
    private static func take(_ shared: Shared) -> [ProxyEvent]? {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        while shared.pending.isEmpty, !shared.stopped { shared.condition.wait() }
        let deadline = Date(timeIntervalSinceNow: linger)
        while !shared.stopped, shared.flushing == 0, shared.pending.count < batch, shared.condition.wait(until: deadline) {}
        guard !shared.pending.isEmpty else { return nil }
        let batch = shared.pending
        shared.pending.removeAll(keepingCapacity: true)
        return batch
    }

    func enqueue(_ event: ProxyEvent) {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        while shared.pending.count >= capacity, !shared.stopped { shared.condition.wait() }
        shared.pending.append(event)
        shared.queued += 1
        if shared.pending.count == 1 || shared.pending.count == Self.batch { shared.condition.broadcast() }
    }

    /// Returns once every event enqueued before the call is written.
    func flush() {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        let target = shared.queued
        guard shared.written < target else { return }
        shared.flushing += 1
        shared.condition.broadcast()
        while shared.written < target { shared.condition.wait() }
        shared.flushing -= 1
    }

    deinit {
        // The thread writes what is left, then ends.
        shared.condition.lock()
        shared.stopped = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }
}
