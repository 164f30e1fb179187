import ServiceLifecycle
import Synchronization

/// A fleet as a long-lived service: `run` brings it up, lets `onRunning` use it, and on
/// graceful shutdown (SIGINT, SIGTERM through the service group) calls `onStopping` and takes
/// everything down. A failure on the way up also takes down what was started, then throws.
public final class FleetService: Service {
    public enum State: Sendable, Equatable {
        case idle
        case starting
        case running
        case stopping
        case stopped
        case failed(String)
    }

    public let fleet: Fleet
    /// How long a rotation's old addresses keep working.
    public let drain: Duration
    private let onRunning: @Sendable (Fleet) async throws -> Void
    private let onStopping: @Sendable (Fleet) async -> Void
    private let current = Mutex<State>(.idle)

    public init(
        fleet: Fleet, drain: Duration, onRunning: @escaping @Sendable (Fleet) async throws -> Void = { _ in },
        onStopping: @escaping @Sendable (Fleet) async -> Void = { _ in }
    ) {
        self.fleet = fleet
        self.drain = drain
        self.onRunning = onRunning
        self.onStopping = onStopping
    }

    public var state: State { current.withLock { $0 } }

    public func run() async throws {
        current.withLock { $0 = .starting }
        do {
            try await fleet.start(drain: drain)
            current.withLock { $0 = .running }
            try await onRunning(fleet)
        } catch {
            current.withLock { $0 = .failed("\(error)") }
            await onStopping(fleet)
            await fleet.stop()
            throw error
        }
        try? await gracefulShutdown()
        current.withLock { $0 = .stopping }
        await onStopping(fleet)
        await fleet.stop()
        current.withLock { $0 = .stopped }
    }
}
