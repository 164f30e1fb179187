import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Synchronization

/// One `edgesim node-host` process of a running fleet, hosting some of its edge nodes, driven
/// with `NodeControl` lines, each request naming its node: over its standard input and output
/// when the runner starts it, over a TCP connection when it listens elsewhere (`pod`). It ends
/// its nodes by itself when the runner goes away, since its input closes.
public final class NodeHostProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `node-host-N`, for its log lines that are no node's.
    public let name: String
    /// The nodes it may host.
    public let nodes: [String]
    /// The command line: the edgesim executable and its arguments.
    let command: [String]
    /// Set when the process runs elsewhere and listens for the runner.
    public let pod: (pods: NodePods, pod: NodePods.Pod)?
    /// The DNS server its nodes ask, as address:port, for one elsewhere.
    let resolver: String?
    /// The fleet's certificate folder, whose files go to one elsewhere (it cannot read them here).
    let certificateFolder: String?
    private let onEvent: @Sendable (ProxyEvent) -> Void
    private let onLog: @Sendable (String, String) -> Void
    private let onExit: @Sendable (String, Int32, Bool) -> Void
    private let state = Mutex(State())

    private struct State {
        var process: (any NodeHostLink)?
        var input: FileHandle?
        var nextID = 1
        var replies: [Int: CheckedContinuation<NodeControl.Output, Never>] = [:]
        var ready: CheckedContinuation<Bool, Never>?
        /// Set while the process starts, so nodes starting at once share one start.
        var starting: Task<Void, any Error>?
        /// Nodes running in it now, and those asked to end (their exit is expected).
        var running: Set<String> = []
        var ending: Set<String> = []
        /// The runner asked the whole process to stop.
        var closing = false
        /// The certificate files a host elsewhere has now.
        var sentFiles: [String: String] = [:]
        /// The challenge a host elsewhere opened this connection with; files sent later are sealed for it.
        var challenge: String?
    }

    public init(
        name: String, nodes: [String], command: [String], onEvent: @escaping @Sendable (ProxyEvent) -> Void,
        onLog: @escaping @Sendable (_ node: String, _ line: String) -> Void,
        onExit: @escaping @Sendable (_ node: String, _ status: Int32, _ expected: Bool) -> Void,
        pod: (pods: NodePods, pod: NodePods.Pod)? = nil, resolver: String? = nil, certificateFolder: String? = nil
    ) {
        self.resolver = resolver
        self.certificateFolder = certificateFolder
        self.name = name
        self.nodes = nodes
        self.command = command
        self.pod = pod
        self.onEvent = onEvent
        self.onLog = onLog
        self.onExit = onExit
    }

    /// Its process id, while it runs on this machine.
    public var pid: Int32? { state.withLock { $0.process?.isRunning == true ? $0.process?.processID : nil } }

    public func isRunning(_ node: String) -> Bool { state.withLock { $0.process?.isRunning == true && $0.running.contains(node) } }

    /// Starts the process unless it runs, and waits until it says it is ready.
    func ensureStarted(timeout: Duration) async throws {
        let task = state.withLock { state -> Task<Void, any Error>? in
            if state.process?.isRunning == true, state.starting == nil { return nil }
            if let starting = state.starting { return starting }
            let task = Task { try await self.launch(timeout: timeout) }
            state.starting = task
            return task
        }
        guard let task else { return }
        defer { state.withLock { $0.starting = nil } }
        try await task.value
    }

    private func launch(timeout: Duration) async throws {
        if let pod { return try await connect(pod.pods, pod.pod, timeout: timeout) }
        // A host needs no working directory (its files' paths are absolute); "/" is one it can always enter.
        let process = try ChildProcess(command, directory: "/", input: .pipe, output: .pipe, errors: .pipe)
        adopt(process)
        guard let output = process.output, let errors = process.errors else { throw Failure(description: "\(name): no pipes") }
        Task { [self] in await read(LineStream.lines(of: output)) }
        Task { [self] in
            for await line in LineStream.lines(of: errors) { onLog(owner(of: line), line) }
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
            if let pid = process.isRunning ? process.pid : nil { Foundation.kill(pid, SIGKILL) }
            throw Failure(description: "\(name) did not become ready within \(timeout) (see its log)")
        }
    }

    /// Takes a newly started process (or connection) as the one requests go to, with no node in it yet.
    private func adopt(_ link: any NodeHostLink) {
        state.withLock {
            $0.process = link
            $0.input = link.input
            $0.closing = false
            $0.running = []
            $0.ending = []
        }
        link.onExit { [self] status in exited(status) }
    }

    private func read(_ lines: AsyncStream<String>) async {
        for await line in lines {
            switch NodeControl.line(from: Array(line.utf8)) {
            case .event(let event): onEvent(event)
            case .output(let message): received(message)
            case nil: onLog(owner(of: line), line)
            }
        }
    }

    /// Connects to the process listening for the runner and says hello; it is ready when it
    /// answers.
    private func connect(_ pods: NodePods, _ pod: NodePods.Pod, timeout: Duration) async throws {
        let connection = try await reach(pod, within: timeout)
        let link = RemoteNodeHost(connection)
        // The host speaks first: the challenge the hello answers. Read before the line stream starts.
        let opening = (try? await ControlSocket.onThread { ControlSocket.readLine(connection.descriptor, timeout: .seconds(10)) }) ?? nil
        guard let challenge = opening.flatMap({ NodeControl.output(from: $0) })?.challenge else {
            await link.end(within: .zero)
            throw Failure(
                description: "\(name) at \(pod.address) did not open with a challenge: is it an edgesim node host (node-host --listen)?")
        }
        adopt(link)
        Task { [self] in
            await read(link.lines())
            link.finished()
        }
        do {
            let port = pods.plan.mode == .netns ? try await pods.tunnelPort(local: connection.local) : nil
            let files = try certificateFolder.map(CertificateFiles.read) ?? [:]
            let hello = try pods.hello(pod, challenge: challenge, tunnelPort: port, resolver: resolver, files: files)
            let reply = await send(hello, timeout: timeout)
            if let problem = reply.error { throw Failure(description: "\(name) at \(pod.address) refused the runner: \(problem)") }
            try pods.connected(pod, hello: hello, challenge: challenge, reply: reply, peer: connection.peer)
            state.withLock {
                $0.sentFiles = files
                $0.challenge = challenge
            }
        } catch {
            await link.end(within: .zero)
            throw error
        }
    }

    /// Connects to the host, trying again while it is not there yet (a pod still starting, its
    /// name not yet published) until `timeout` has passed.
    private func reach(_ pod: NodePods.Pod, within timeout: Duration) async throws -> ControlSocket.Connection {
        let deadline = ContinuousClock.now + timeout
        var wait = Duration.milliseconds(100)
        while true {
            let left = deadline - .now
            do {
                return try await ControlSocket.onThread {
                    try ControlSocket.connect(host: pod.host, port: pod.port, timeout: max(.seconds(1), min(left, .seconds(5))))
                }
            } catch {
                guard ContinuousClock.now + wait < deadline else {
                    throw Failure(description: "\(name) at \(pod.address): cannot connect within \(timeout): \(error)")
                }
                if wait == .milliseconds(100) { onLog(name, "\(pod.address) not there yet (\(error)): trying again for \(timeout)") }
            }
            // Backing off between attempts, not waiting for an event.
            try await Task.sleep(for: wait)
            wait = min(wait * 2, .seconds(2))
        }
    }

    /// Gives a host elsewhere the fleet's certificate files if they changed since it last got them
    /// (an application with edge TLS defined while the fleet runs); nothing for a child process,
    /// which reads the folder itself.
    func syncFiles() async throws {
        guard let pods = pod?.pods, let certificateFolder, pid == nil, state.withLock({ $0.process?.isRunning == true }) else { return }
        let files = try CertificateFiles.read(certificateFolder)
        guard files != state.withLock({ $0.sentFiles }), let challenge = state.withLock({ $0.challenge }) else { return }
        var request = NodeControl.Request(id: 0, op: .files, app: "", addresses: [])
        try pods.give(files, challenge: challenge, in: &request)
        if let problem = await send(request, timeout: .seconds(10)).error {
            throw Failure(description: "\(name): cannot give it the certificate files: \(problem)")
        }
        state.withLock { $0.sentFiles = files }
    }

    /// The node a log line speaks of (`node NAME: ...`, or swift-log's `node=NAME`), else the host.
    private func owner(of line: String) -> String {
        if line.hasPrefix("node "), let colon = line.firstIndex(of: ":") {
            let candidate = String(line[line.index(line.startIndex, offsetBy: 5)..<colon])
            if nodes.contains(candidate) { return candidate }
        }
        if let range = line.range(of: "node=") {
            let candidate = String(line[range.upperBound...].prefix { !$0.isWhitespace && $0 != "]" })
            if nodes.contains(candidate) { return candidate }
        }
        return name
    }

    /// Starts a node in the process (starting the process first if it is not running).
    func startNode(_ node: String, timeout: Duration) async throws {
        try await ensureStarted(timeout: timeout)
        if let problem = await send(.start, node: node, timeout: timeout).error {
            throw Failure(description: "node \(node): \(problem)")
        }
        state.withLock { state in
            state.running.insert(node)
            state.ending.remove(node)
        }
    }

    /// Ends a node in the process, gracefully or as a kill; reported as its exit.
    func endNode(_ node: String, kill: Bool, grace: Duration) async {
        let wasRunning = state.withLock { state -> Bool in
            state.ending.insert(node)
            return state.running.contains(node)
        }
        guard wasRunning else { return }
        var request = NodeControl.Request(id: 0, op: kill ? .kill : .stop, app: "", addresses: [], node: node)
        request.grace = grace.seconds
        _ = await send(request, timeout: grace + .seconds(10))
        let ended = state.withLock { $0.running.remove(node) != nil }
        if ended { onExit(node, kill ? SIGKILL : 0, true) }
    }

    /// Asks the process to stop every node (its input closes), then kills it if it has not
    /// ended within `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        let process = state.withLock { state in
            state.closing = true
            state.input = nil
            return state.process
        }
        process?.closeInput()
        await process?.end(within: grace + .seconds(2))
    }

    func send(
        _ op: NodeControl.Request.Operation, node: String, app: String = "", addresses: [IPAddress] = [], application: String? = nil,
        timeout: Duration = .seconds(10)
    ) async -> NodeControl.Output {
        await send(
            NodeControl.Request(id: 0, op: op, app: app, addresses: addresses, application: application, node: node), timeout: timeout)
    }

    /// Sends one request; the reply (its `error` set when it failed or did not come within
    /// `timeout`: a frozen node must not hold up the fleet).
    private func send(_ request: NodeControl.Request, timeout: Duration) async -> NodeControl.Output {
        var request = request
        request.id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let id = request.id
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
                    try input.writeAll(NodeControl.encode(request))
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
        let (waiters, ready, ended) = state.withLock { state in
            defer {
                state.replies = [:]
                state.running = []
            }
            let ended = state.running.sorted().map { ($0, state.closing || state.ending.contains($0)) }
            return (Array(state.replies.values), state.ready.take(), ended)
        }
        for waiter in waiters { waiter.resume(returning: NodeControl.Output(reply: -1, error: "exited")) }
        ready?.resume(returning: false)
        for (node, expected) in ended { onExit(node, status, expected) }
    }
}
