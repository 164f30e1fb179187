import EdgeModel
import EdgeProxy
import Foundation
import ServiceLifecycle
import Synchronization

/// A node-host process's end of the control channel: requests name their node; each node's
/// requests are carried out in order, while pings, freezes and kills are taken at once (a
/// frozen node must not hold up the others, nor its own thaw). Returns when standard input
/// closes, after stopping every node, so a runner that dies leaves nothing behind.
public final class NodeHostControlService: Service {
    let host: NodeHost
    let input: FileHandle
    let output: FileHandle
    /// How long the nodes' connections may take to finish when the runner goes. Default 5 s.
    let drain: Duration
    /// Where `files` requests go (a node host listening for runners elsewhere); nil: refused.
    let files: (@Sendable (NodeControl.Request) -> String?)?
    private let writing = Mutex(())
    private let queues = Mutex<[String: AsyncStream<NodeControl.Request>.Continuation]>([:])

    public init(
        host: NodeHost, drain: Duration = .seconds(5), input: FileHandle = .standardInput, output: FileHandle = .standardOutput,
        files: (@Sendable (NodeControl.Request) -> String?)? = nil
    ) {
        self.host = host
        self.drain = drain
        self.input = input
        self.output = output
        self.files = files
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { tasks in
            for await line in LineStream.lines(of: input) where !line.isEmpty {
                guard let request = NodeControl.request(from: Array(line.utf8)) else {
                    write(NodeControl.Output(reply: -1, error: "not a control request: \(line.prefix(80))"))
                    continue
                }
                if request.op == .files {
                    let problem = files.map { $0(request) } ?? "certificate files are given only to a node host that listens"
                    write(NodeControl.Output(reply: request.id, error: problem))
                    continue
                }
                guard let name = request.node, host.blueprints[name] != nil else {
                    write(NodeControl.Output(reply: request.id, error: "\(request.node.map { "no node \($0) here" } ?? "no node named")"))
                    continue
                }
                switch request.op {
                case .ping:
                    tasks.addTask {
                        let answered = await self.host.ping(name)
                        self.write(NodeControl.Output(reply: request.id, error: answered ? nil : "node \(name) is not running"))
                    }
                case .freeze, .thaw:
                    let done = host.freeze(name, request.op == .freeze)
                    write(NodeControl.Output(reply: request.id, error: done ? nil : "node \(name) is not running"))
                case .kill:
                    tasks.addTask {
                        await self.host.kill(name)
                        self.write(NodeControl.Output(reply: request.id, error: nil))
                    }
                default:
                    let queue = queues.withLock { queues -> AsyncStream<NodeControl.Request>.Continuation? in
                        if let known = queues[name] { return known }
                        let (stream, continuation) = AsyncStream.makeStream(of: NodeControl.Request.self)
                        queues[name] = continuation
                        tasks.addTask {
                            for await queued in stream { self.write(await self.answer(queued, node: name)) }
                        }
                        return continuation
                    }
                    queue?.yield(request)
                }
            }
            for queue in queues.withLock({ Array($0.values) }) { queue.finish() }
            await host.stopAll(grace: drain)
        }
    }

    private func answer(_ request: NodeControl.Request, node name: String) async -> NodeControl.Output {
        switch request.op {
        case .start:
            do {
                try await host.start(name)
                return NodeControl.Output(reply: request.id, error: nil)
            } catch {
                return NodeControl.Output(reply: request.id, error: "\(error)")
            }
        case .stop:
            await host.stop(name, grace: .seconds(request.grace ?? 5))
            return NodeControl.Output(reply: request.id, error: nil)
        default:
            guard let node = host.node(name) else { return NodeControl.Output(reply: request.id, error: "node \(name) is not running") }
            return await NodeRequests.answer(request, node: node, certificateFolder: host.options.certificateFolder)
        }
    }

    /// Events recorded before the reply go out before it.
    private func write(_ message: NodeControl.Output) {
        host.events.flush()
        writing.withLock { _ in try? output.writeAll(NodeControl.encode(message)) }
    }
}
