import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Synchronization

/// One `edgesim node` process of a running fleet, driven over its standard input and output
/// (`NodeControl`). It ends by itself when the runner goes away, since its input closes.
public final class NodeProcess: AddressServing {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let name: String
    /// The command line: the edgesim executable and its arguments, behind any wrapper
    /// (`ip netns exec NS`).
    let command: [String]
    private let onEvent: @Sendable (String, ProxyEvent) -> Void
    private let onLog: @Sendable (String, String) -> Void
    private let onExit: @Sendable (String, Int32, Bool) -> Void
    private let state = Mutex(State())

    private struct State {
        var process: ChildProcess?
        var input: FileHandle?
        var nextID = 1
        var replies: [Int: CheckedContinuation<NodeControl.Output, Never>] = [:]
        var ready: CheckedContinuation<Bool, Never>?
        var watcher: Task<Void, Never>?
        /// The runner asked it to stop (or killed it on purpose).
        var stopping = false
        /// Applications defined or removed since the fleet started (app id → Spectrum JSON, nil
        /// when removed), given again to a process started anew.
        var changes: [String: String?] = [:]
    }

    public init(
        name: String, command: [String], onEvent: @escaping @Sendable (String, ProxyEvent) -> Void,
        onLog: @escaping @Sendable (String, String) -> Void,
        onExit: @escaping @Sendable (_ name: String, _ status: Int32, _ expected: Bool) -> Void
    ) {
        self.name = name
        self.command = command
        self.onEvent = onEvent
        self.onLog = onLog
        self.onExit = onExit
    }

    public var pid: Int32? { state.withLock { $0.process?.pid } }
    public var isRunning: Bool { state.withLock { $0.process?.isRunning ?? false } }

    /// Starts the process and waits until it says it is ready (or exits, or `timeout` passes).
    public func start(timeout: Duration = .seconds(30)) async throws {
        // A node needs no working directory (its scenario path is absolute); "/" is one it can always enter.
        let process = try ChildProcess(command, directory: "/", input: .pipe, output: .pipe, errors: .pipe)
        state.withLock {
            $0.process = process
            $0.input = process.input
            $0.stopping = false
        }
        process.onExit { [self] status in exited(status) }
        guard let output = process.output, let errors = process.errors else { throw Failure(description: "node \(name): no pipes") }
        Task { [self] in
            for await line in LineStream.lines(of: output) {
                switch NodeControl.line(from: Array(line.utf8)) {
                case .event(let event): onEvent(name, event)
                case .output(let message): received(message)
                case nil: onLog(name, line)
                }
            }
        }
        Task { [self] in
            for await line in LineStream.lines(of: errors) { onLog(name, line) }
        }
        let timer = Task { [self] in
            try await Task.sleep(for: timeout)
            state.withLock { $0.ready.take() }?.resume(returning: false)
        }
        defer { timer.cancel() }
        let ready = await withCheckedContinuation { continuation in
            let early = state.withLock { state -> Bool in
                guard state.process?.isRunning ?? false else { return true }
                state.ready = continuation
                return false
            }
            if early { continuation.resume(returning: false) }
        }
        guard ready else {
            kill()
            throw Failure(description: "node \(name) did not become ready within \(timeout) (see its log)")
        }
        // A process started anew reads the applications of its start; later changes are given again.
        for (app, json) in state.withLock({ $0.changes }).sorted(by: { $0.key < $1.key }) {
            let reply = await send(json == nil ? .remove : .define, app: app, addresses: [], application: json ?? nil)
            if let problem = reply.error, json != nil { throw Failure(description: "node \(name): \(problem)") }
        }
    }

    /// Adds or changes an application on the node (and on the process started after a restart).
    public func define(_ app: Application) async throws {
        let json = String(decoding: app.spectrumJSON, as: UTF8.self)
        state.withLock { $0.changes[app.id] = .some(json) }
        if let problem = await send(.define, app: app.id, addresses: [], application: json).error {
            throw Failure(description: "node \(name): \(problem)")
        }
    }

    /// Stops serving an application on the node and forgets it.
    public func remove(_ appID: String) async {
        state.withLock { $0.changes[appID] = .some(nil) }
        _ = await send(.remove, app: appID, addresses: [])
    }

    public func startServing(_ appID: String, on addresses: [IPAddress]) async throws {
        if let problem = await send(.serve, app: appID, addresses: addresses).error {
            throw Failure(description: "node \(name): \(problem)")
        }
    }

    public func stopServing(_ appID: String, address: IPAddress) async {
        _ = await send(.retire, app: appID, addresses: [address])
    }

    /// Serve exactly `addresses` for the app (after the node was unreachable for a while).
    public func reconcile(_ appID: String, to addresses: [IPAddress]) async throws {
        if let problem = await send(.reconcile, app: appID, addresses: addresses).error {
            throw Failure(description: "node \(name): \(problem)")
        }
    }

    /// Pings the node every `interval` over its control channel; a ping unanswered within
    /// `timeout` reports it unresponsive, the next answer responsive again. Runs until the
    /// process ends or is stopped.
    public func watchLiveness(
        interval: Duration = .seconds(1), timeout: Duration = .seconds(3), onChange: @escaping @Sendable (_ responsive: Bool) -> Void
    ) {
        let task = Task { [self] in
            var responsive = true
            while !Task.isCancelled {
                let watched = state.withLock { !$0.stopping && $0.process?.isRunning == true }
                guard watched else { return }
                let answered = await send(.ping, app: "", addresses: [], timeout: timeout).error == nil
                let still = state.withLock { !$0.stopping && $0.process?.isRunning == true }
                guard still else { return }
                if answered != responsive {
                    responsive = answered
                    onChange(answered)
                }
                // The heartbeat's period, not a wait for something to happen.
                try? await Task.sleep(for: interval)
            }
        }
        state.withLock { $0.watcher = task }
    }

    /// Suspends (SIGSTOP) or resumes (SIGCONT) the process, as a stalled machine would be.
    public func freeze(_ frozen: Bool) {
        let pid = state.withLock { $0.process?.isRunning == true ? $0.process?.pid : nil }
        if let pid { Foundation.kill(pid, frozen ? SIGSTOP : SIGCONT) }
    }

    /// What the node's smart routing measures and chose; nil when it does none or did not answer.
    public func smartRouting() async -> SmartRoutingReport? {
        await send(.routes, app: "", addresses: []).routes
    }

    /// Ends the process as a crash would (SIGKILL).
    public func kill() {
        let pid = state.withLock { state -> Int32? in
            state.stopping = true
            return state.process?.isRunning == true ? state.process?.pid : nil
        }
        if let pid { Foundation.kill(pid, SIGKILL) }
    }

    /// Asks the process to stop (its input closes), then kills it if it has not within `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        let (process, input) = state.withLock { state in
            state.stopping = true
            state.watcher?.cancel()
            defer { state.input = nil }
            return (state.process, state.input)
        }
        // A frozen process could not see its input close.
        if let pid = process?.pid, process?.isRunning == true { Foundation.kill(pid, SIGCONT) }
        try? input?.close()
        await process?.end(within: grace)
    }

    /// Sends one request; the node's reply (its `error` set when it failed or did not answer
    /// within `timeout`: a frozen node must not hold up the fleet).
    private func send(
        _ op: NodeControl.Request.Operation, app: String, addresses: [IPAddress], application: String? = nil,
        timeout: Duration = .seconds(10)
    ) async -> NodeControl.Output {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let timer = Task { [self] in
            try await Task.sleep(for: timeout)
            state.withLock { $0.replies.removeValue(forKey: id) }?.resume(
                returning: NodeControl.Output(reply: id, error: "no answer within \(timeout)"))
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let problem = state.withLock { state -> String? in
                guard let input = state.input, state.process?.isRunning == true else { return "not running" }
                state.replies[id] = continuation
                do {
                    try input.writeAll(
                        NodeControl.encode(NodeControl.Request(id: id, op: op, app: app, addresses: addresses, application: application)))
                } catch {
                    state.replies[id] = nil
                    return "cannot write to it: \(error)"
                }
                return nil
            }
            if let problem { continuation.resume(returning: NodeControl.Output(reply: -1, error: problem)) }
        }
    }

    private func received(_ message: NodeControl.Output) {
        if message.ready == true {
            state.withLock { $0.ready.take() }?.resume(returning: true)
        } else if let id = message.reply {
            state.withLock { $0.replies.removeValue(forKey: id) }?.resume(returning: message)
        }
    }

    private func exited(_ status: Int32) {
        let (waiters, ready, expected) = state.withLock { state in
            defer { state.replies = [:] }
            return (Array(state.replies.values), state.ready.take(), state.stopping)
        }
        for waiter in waiters { waiter.resume(returning: NodeControl.Output(reply: -1, error: "exited")) }
        ready?.resume(returning: false)
        onExit(name, status, expected)
    }
}
