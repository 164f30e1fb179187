import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A node-host process that waits for its runner on a TCP port (`edgesim node-host --listen`),
/// as a node-host pod does: the runner connects, is given a challenge, says `hello` (proof of
/// the shared token for that challenge, the nodes to host, in netns mode their tunnels and its
/// tunnel port; `NodeHostHandshake`), and then drives the nodes with the
/// same JSON lines as over standard input. When the connection closes, every node stops, the
/// namespaces made for them go, and the next runner may connect. One runner at a time: another
/// is told who is served. SIGTERM or SIGINT ends the session running as if its runner had gone.
public final class NodeHostListener: Service {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let plan: FleetPlan
    let options: NodeHost.Options
    let token: String?
    let certificateFolder: String?
    let logger: Logger
    private let say: @Sendable (String) -> Void
    private let listener: Int32
    /// The runner served now, and since when; another is refused meanwhile.
    private let serving = Mutex<(peer: String, since: Date)?>(nil)
    /// Every connection open now, so a shutdown can end their sessions.
    private let open = Mutex<Set<Int32>>([])
    /// The port it listens on.
    public let port: Int

    /// Listens on `host`:`port` at once (so the port is known before `run`).
    public init(
        plan: FleetPlan, host: String, port: Int, token: String?, options: NodeHost.Options, certificateFolder: String?,
        logger: Logger, say: @escaping @Sendable (String) -> Void
    ) throws {
        (listener, self.port) = try ControlSocket.listen(host: host, port: port)
        self.plan = plan
        self.token = token
        self.options = options
        self.certificateFolder = certificateFolder
        self.logger = logger
        self.say = say
    }

    public func run() async throws {
        let connections = AsyncStream<ControlSocket.Connection> { continuation in
            let listener = self.listener
            Thread {
                while let connection = ControlSocket.accept(listener) { continuation.yield(connection) }
                continuation.finish()
            }.start()
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { sessions in
                for await connection in connections {
                    sessions.addTask { await self.serve(connection) }
                }
            }
        } onCancelOrGracefulShutdown: { [listener, self] in
            // Wakes the accepting thread, and ends every session as if its runner had gone:
            // the nodes stop and what was made for them is deleted before the process ends.
            shutdown(listener, Int32(SHUT_RDWR))
            for descriptor in self.open.withLock({ $0 }) { shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
        close(listener)
    }

    /// One runner's session, from its hello to its going away.
    func serve(_ connection: ControlSocket.Connection) async {
        let handle = FileHandle(fileDescriptor: connection.descriptor, closeOnDealloc: true)
        open.withLock { _ = $0.insert(connection.descriptor) }
        defer {
            open.withLock { _ = $0.remove(connection.descriptor) }
            // Closed only after it is off the list, so a shutdown never reaches a reused descriptor.
            withExtendedLifetime(handle) {}
        }
        func refuse(_ id: Int, _ problem: String) {
            say("refused runner \(connection.peer): \(problem)")
            try? handle.writeAll(NodeControl.encode(NodeControl.Output(reply: id, error: problem)))
        }
        let challenge = NodeHostHandshake.challenge()
        try? handle.writeAll(NodeControl.encode(NodeControl.Output(challenge: challenge)))
        let first = try? await ControlSocket.onThread { ControlSocket.readLine(connection.descriptor, timeout: .seconds(10)) }
        guard let line = first ?? nil,
            let hello = NodeControl.request(from: line), hello.op == .hello
        else { return refuse(-1, "the first request must be a hello") }
        if let problem = check(hello, challenge: challenge) { return refuse(hello.id, problem) }
        let given: [String: String]?
        switch files(of: hello, challenge: challenge) {
        case .success(let files): given = files
        case .failure(let problem): return refuse(hello.id, problem.description)
        }
        let busy = serving.withLock { serving -> (peer: String, since: Date)? in
            if let serving { return serving }
            serving = (connection.peer, Date())
            return nil
        }
        if let busy {
            return refuse(hello.id, "busy: serving the runner at \(busy.peer) since \(busy.since.formatted(.iso8601))")
        }
        defer { serving.withLock { $0 = nil } }
        let names = hello.nodes ?? []
        var network: NodePodNetwork?
        var tunnelPort: Int?
        if plan.mode == .netns {
            let pod = NodePodNetwork(plan: plan, nodes: zip(names, (hello.tunnels ?? []).map { UInt32($0) }).map { ($0, $1) })
            network = pod
            do {
                let runner = try SocketAddress(ipAddress: connection.peer, port: hello.tunnelPort ?? 0)
                tunnelPort = try await pod.start(local: connection.local, runner: runner)
            } catch {
                await pod.stop()
                return refuse(hello.id, "cannot make the nodes' namespaces: \(error)")
            }
        }
        // The runner's certificates, in a folder of the session's (removed with it).
        let sessionFolder = given.map { _ in
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "\(FleetCertificates.folderPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            ).path
        }
        let certificateFolder = sessionFolder ?? self.certificateFolder
        if let files = given, let folder = sessionFolder {
            do {
                try CertificateFiles.write(files, into: folder)
            } catch {
                try? FileManager.default.removeItem(atPath: folder)
                await network?.stop()
                return refuse(hello.id, "cannot keep the certificate files: \(error)")
            }
        }
        defer { if let sessionFolder { try? FileManager.default.removeItem(atPath: sessionFolder) } }
        var options = self.options
        options.certificateFolder = certificateFolder
        options.namespacePrefix = network?.namespacePrefix
        if let resolver = hello.resolver { options.resolver = Endpoint(resolver) }
        let events = EventLog(output: handle)
        let host = NodeHost(
            blueprints: names.map { NodeBlueprint(plan: plan, node: $0, certificateFolder: certificateFolder) }, options: options,
            events: events, logger: logger)
        say("runner \(connection.peer) connected: hosting \(names.count) nodes")
        var reply = NodeControl.Output(reply: hello.id, error: nil)
        reply.tunnelPort = tunnelPort
        if let token, let theirs = hello.challenge {
            reply.answer = NodeHostHandshake.answer(token: token, runnerChallenge: theirs, challenge: challenge)
        }
        try? handle.writeAll(NodeControl.encode(reply))
        let control = NodeHostControlService(
            host: host, drain: .seconds(1), input: handle, output: handle,
            files: { [self] request in
                guard let sessionFolder else { return "this session has no certificate folder: the runner gave no files at hello" }
                do {
                    try CertificateFiles.write(files(of: request, challenge: challenge).get() ?? [:], into: sessionFolder)
                    return nil
                } catch {
                    return "\(error)"
                }
            })
        try? await control.run()
        await host.shutdown(grace: .seconds(1))
        events.flush()
        await network?.stop()
        say("runner \(connection.peer) went: \(names.count) nodes stopped\(network == nil ? "" : ", their namespaces deleted")")
    }

    /// Why a hello answering `challenge` is refused; nil when it is taken.
    func check(_ hello: NodeControl.Request, challenge: String) -> String? {
        if let token, !NodeHostHandshake.verify(hello.proof ?? "", token: token, challenge: challenge, fleet: hello.fleet ?? "") {
            return "wrong token"
        }
        guard hello.fleet == plan.fingerprint else {
            return "the runner's fleet is not this host's (different topology or applications files)"
        }
        let names = hello.nodes ?? []
        guard !names.isEmpty else { return "no nodes named" }
        let unknown = names.filter { !plan.edgeNodes.contains($0) }
        guard unknown.isEmpty else { return "not edge nodes of \(plan.scenario.topology.name): \(unknown.joined(separator: ", "))" }
        guard Set(names).count == names.count else { return "a node is named twice" }
        if plan.mode == .netns {
            guard let tunnels = hello.tunnels, tunnels.count == names.count, tunnels.allSatisfy({ UInt32(exactly: $0) != nil }),
                let port = hello.tunnelPort, (1...65535).contains(port)
            else { return "netns mode needs a tunnel id for each node and the runner's tunnel port" }
        }
        return nil
    }

    /// The certificate files a `hello` or `files` request gives, opened when sealed and checked
    /// (names, sizes); nil when it gives none.
    func files(of request: NodeControl.Request, challenge: String) -> Result<[String: String]?, CertificateFiles.Failure> {
        var files = request.files
        if let sealed = request.sealedFiles {
            guard let token else {
                return .failure(
                    .init(description: "the runner sealed its certificate files with a token; this host was given none (--token-file)"))
            }
            do {
                files = try NodeHostHandshake.open(sealed, token: token, challenge: challenge)
            } catch {
                return .failure(.init(description: "\(error)"))
            }
        }
        if let problem = files.flatMap(CertificateFiles.problem) { return .failure(.init(description: problem)) }
        return .success(files)
    }
}

extension FleetPlan {
    /// Names what a runner and a node-host elsewhere must agree on: the topology, its edge nodes
    /// in order, the application pools and the applications' ids (FNV-1a, as hex).
    public var fingerprint: String {
        let text = ([scenario.topology.name, "\(applicationPoolIPv4)", "\(applicationPoolIPv6)"] + edgeNodes + applications.map(\.id))
            .joined(separator: "\n")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
