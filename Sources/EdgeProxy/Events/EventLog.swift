import EdgeModel
import Foundation
import Synchronization

/// Where events go: JSON lines to a file or stdout (or nowhere), and into a summary. Recording
/// is cheap for an event loop: counts, the summary and recent events are updated under a lock;
/// encoding and writing happen on the `EventWriter`'s thread.
public final class EventLog: Sendable {
    private let state: Mutex<State>
    private let writer: EventWriter?

    private struct State {
        /// The most recent events, at most `retained`, oldest first once full (a ring).
        var recent: [ProxyEvent] = []
        var next = 0
        var summary = EventSummary.Accumulator()
        var counts: [ProxyEvent.Kind: Int] = [:]
        var ordered: [ProxyEvent] { Array(recent[next...] + recent[..<next]) }
        var waiters: [(id: Int, matches: @Sendable (ProxyEvent) -> Bool, continuation: CheckedContinuation<ProxyEvent?, Never>)] = []
        var nextWaiter = 0
        /// Waiters whose time ran out before they were registered.
        var expired: Set<Int> = []
    }

    /// How many recent events are kept for lookups; counts and the summary take in every event.
    public let retained: Int

    public init(output: FileHandle? = nil, retained: Int = 10_000) {
        writer = output.map { EventWriter(output: $0) }
        self.retained = retained
        state = Mutex(State())
    }

    public func record(_ event: ProxyEvent) {
        writer?.enqueue(event)
        let woken = state.withLock { state in
            state.counts[event.event, default: 0] += 1
            state.summary.add(event)
            if state.recent.count < retained {
                state.recent.append(event)
            } else if retained > 0 {
                state.recent[state.next] = event
                state.next = (state.next + 1) % retained
            }
            guard !state.waiters.isEmpty else { return [CheckedContinuation<ProxyEvent?, Never>]() }
            let matching = state.waiters.filter { $0.matches(event) }
            state.waiters.removeAll { $0.matches(event) }
            return matching.map(\.continuation)
        }
        for continuation in woken { continuation.resume(returning: event) }
    }

    /// The first event, recorded or still to come, that matches; nil if none comes within `timeout`.
    public func first(
        within timeout: Duration = .seconds(10), where matches: @escaping @Sendable (ProxyEvent) -> Bool
    ) async -> ProxyEvent? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            let expired = state.withLock { state -> CheckedContinuation<ProxyEvent?, Never>? in
                guard let waiter = state.waiters.first(where: { $0.id == id }) else {
                    state.expired.insert(id)
                    return nil
                }
                state.waiters.removeAll { $0.id == id }
                return waiter.continuation
            }
            expired?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let (found, expired) = state.withLock { state -> (ProxyEvent?, Bool) in
                if let event = state.ordered.first(where: matches) { return (event, false) }
                if state.expired.remove(id) != nil { return (nil, true) }
                state.waiters.append((id, matches, continuation))
                return (nil, false)
            }
            if let found { continuation.resume(returning: found) } else if expired { continuation.resume(returning: nil) }
        }
    }

    /// Returns once every event recorded so far is written out (before a process ends).
    public func flush() {
        writer?.flush()
    }

    /// The most recent events (up to `retained`), oldest first.
    public var events: [ProxyEvent] { state.withLock { $0.ordered } }

    public func count(_ kind: ProxyEvent.Kind) -> Int { state.withLock { $0.counts[kind] ?? 0 } }

    /// Figures over every event recorded, however many.
    public func summary() -> EventSummary { state.withLock { $0.summary.summary } }
}
