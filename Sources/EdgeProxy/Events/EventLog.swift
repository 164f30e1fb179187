import EdgeModel
import Foundation
import Synchronization

/// Where events go: JSON lines to a file or stdout (or nowhere), and into a summary.
public final class EventLog: Sendable {
    private let state: Mutex<State>
    private let output: FileHandle?

    private struct State {
        var events: [ProxyEvent] = []
        var counts: [ProxyEvent.Kind: Int] = [:]
    }

    /// How many events are kept for the summary; counts are kept for all.
    public let retained: Int

    public init(output: FileHandle? = nil, retained: Int = 1_000_000) {
        self.output = output
        self.retained = retained
        state = Mutex(State())
    }

    public func record(_ event: ProxyEvent) {
        let line: Data?
        if output != nil {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            line = try? encoder.encode(event) + Data("\n".utf8)
        } else {
            line = nil
        }
        state.withLock { state in
            state.counts[event.event, default: 0] += 1
            if state.events.count < retained { state.events.append(event) }
            if let line { output?.write(line) }
        }
    }

    public var events: [ProxyEvent] { state.withLock { $0.events } }

    public func count(_ kind: ProxyEvent.Kind) -> Int { state.withLock { $0.counts[kind] ?? 0 } }

    public func summary() -> EventSummary { EventSummary(events) }
}
