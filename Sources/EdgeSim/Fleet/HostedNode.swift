import EdgeModel
import EdgeProxy
import Foundation
import Synchronization

/// One edge node of a running fleet, as the runner drives it: inside a node-host process it
/// may share with other nodes, started, stopped, killed and frozen alone.
public final class HostedNode: AddressServing, Sendable {
    public let name: String
    public let host: NodeHostProcess
    private let state = Mutex(State())

    private struct State {
        var watcher: Task<Void, Never>?
        /// Applications defined or removed since the fleet started (app id → Spectrum JSON, nil
        /// when removed), given again to the node when it starts anew.
        var changes: [String: String?] = [:]
    }

    public init(name: String, host: NodeHostProcess) {
        self.name = name
        self.host = host
    }

    /// The process it runs in, while it runs.
    public var pid: Int32? { isRunning ? host.pid : nil }
    public var isRunning: Bool { host.isRunning(name) }

    /// Starts the node (and its host process, if that is not running) and waits until it is ready.
    public func start(timeout: Duration = .seconds(30)) async throws {
        try await host.startNode(name, timeout: timeout)
        try await host.syncFiles()
        // A node started anew reads the applications of the fleet's start; later changes are given again.
        for (app, json) in state.withLock({ $0.changes }).sorted(by: { $0.key < $1.key }) {
            let reply = await host.send(json == nil ? .remove : .define, node: name, app: app, application: json ?? nil)
            if let problem = reply.error, json != nil { throw NodeHostProcess.Failure(description: "node \(name): \(problem)") }
        }
    }

    /// Adds or changes an application on the node (and on the node started after a restart).
    public func define(_ app: Application) async throws {
        let json = String(decoding: app.spectrumJSON, as: UTF8.self)
        state.withLock { $0.changes[app.id] = .some(json) }
        if app.tls != .off { try await host.syncFiles() }
        if let problem = await host.send(.define, node: name, app: app.id, application: json).error {
            throw NodeHostProcess.Failure(description: "node \(name): \(problem)")
        }
    }

    /// Stops serving an application on the node and forgets it.
    public func remove(_ appID: String) async {
        state.withLock { $0.changes[appID] = .some(nil) }
        _ = await host.send(.remove, node: name, app: appID)
    }

    public func startServing(_ appID: String, on addresses: [IPAddress]) async throws {
        if let problem = await host.send(.serve, node: name, app: appID, addresses: addresses).error {
            throw NodeHostProcess.Failure(description: "node \(name): \(problem)")
        }
    }

    public func stopServing(_ appID: String, address: IPAddress) async {
        _ = await host.send(.retire, node: name, app: appID, addresses: [address])
    }

    /// Serve exactly `addresses` for the app (after the node was unreachable for a while).
    public func reconcile(_ appID: String, to addresses: [IPAddress]) async throws {
        if let problem = await host.send(.reconcile, node: name, app: appID, addresses: addresses).error {
            throw NodeHostProcess.Failure(description: "node \(name): \(problem)")
        }
    }

    /// Pings the node every `interval`; a ping unanswered within `timeout` reports it
    /// unresponsive, the next answer responsive again. Runs until the node ends or is stopped.
    public func watchLiveness(
        interval: Duration = .seconds(1), timeout: Duration = .seconds(3), onChange: @escaping @Sendable (_ responsive: Bool) -> Void
    ) {
        let task = Task { [self] in
            var responsive = true
            while !Task.isCancelled, isRunning {
                let answered = await host.send(.ping, node: name, timeout: timeout).error == nil
                guard !Task.isCancelled, isRunning else { return }
                if answered != responsive {
                    responsive = answered
                    onChange(answered)
                }
                // The heartbeat's period, not a wait for something to happen.
                try? await Task.sleep(for: interval)
            }
        }
        state.withLock {
            $0.watcher?.cancel()
            $0.watcher = task
        }
    }

    /// Stalls (or resumes) the node's event loops, as a machine that stops responding.
    public func freeze(_ frozen: Bool) async {
        _ = await host.send(frozen ? .freeze : .thaw, node: name)
    }

    /// What the node's smart routing measures and chose; nil when it does none or did not answer.
    public func smartRouting() async -> SmartRoutingReport? {
        await host.send(.routes, node: name).routes
    }

    /// Ends the node at once with everything it holds, as a crash would.
    public func kill() async {
        state.withLock { $0.watcher?.cancel() }
        await host.endNode(name, kill: true, grace: .zero)
    }

    /// Closes its listeners and lets its connections finish for at most `grace`, then ends it.
    public func stop(grace: Duration = .seconds(5)) async {
        state.withLock { $0.watcher?.cancel() }
        await host.endNode(name, kill: false, grace: grace)
    }
}
