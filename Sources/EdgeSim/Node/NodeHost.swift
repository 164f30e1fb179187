import EdgeModel
import EdgeNet
import EdgeProxy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// Many edge nodes in one process (`edgesim node-host`). Each node has event loops of its own,
/// made inside its network namespace in netns mode, so every socket it opens is there and it
/// can be stopped, killed or frozen alone; the runtime, the control channel and the event
/// output are shared, which is what makes a node cost little.
public final class NodeHost: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Options: Sendable {
        /// Event loop threads each node gets. Default 1.
        public var threadsPerNode = 1
        /// The fleet's DNS, for applications that find their origin by name. Default none.
        public var resolver: Endpoint?
        /// Where the fleet's issued certificates are. Default none.
        public var certificateFolder: String?
        /// netns mode: the fleet's namespaces are named this followed by the host's name
        /// (`edgesim-<run>-`). Default nil: loopback mode, no namespaces.
        public var namespacePrefix: String?

        public init() {}
    }

    /// A running node and what it runs on.
    private final class Slot: Sendable {
        let node: EdgeNode
        let group: MultiThreadedEventLoopGroup
        /// True while frozen; every loop of the group waits for it to turn false.
        let frozen = ConditionLock(value: false)
        /// The same, read without waiting.
        let isFrozen = Mutex(false)

        init(node: EdgeNode, group: MultiThreadedEventLoopGroup) {
            self.node = node
            self.group = group
        }

        func freeze() {
            let already = isFrozen.withLock { frozen in
                defer { frozen = true }
                return frozen
            }
            guard !already else { return }
            frozen.lock()
            frozen.unlock(withValue: true)
            for loop in group.makeIterator() {
                loop.execute { [frozen] in
                    frozen.lock(whenValue: false)
                    frozen.unlock()
                }
            }
        }

        func thaw() {
            isFrozen.withLock { $0 = false }
            frozen.lock()
            frozen.unlock(withValue: false)
        }
    }

    public let blueprints: [String: NodeBlueprint]
    public let options: Options
    public let events: EventLog
    private let logger: Logger
    private let slots = Mutex<[String: Slot]>([:])
    /// Each node's event loops, made at its first start and kept for the next: a node that is
    /// stopped or killed closes its sockets but leaves its loops running, so work still on its way
    /// to them (a DNS answer, a task another loop of the node hands over) lands on a live loop.
    /// They end with the host (`shutdown`).
    private let groups = Mutex<[String: MultiThreadedEventLoopGroup]>([:])
    /// Nodes being started, so a second start of the same node is refused rather than doubled.
    private let starting = Mutex<Set<String>>([])

    public init(blueprints: [NodeBlueprint], options: Options, events: EventLog, logger: Logger) {
        self.blueprints = Dictionary(uniqueKeysWithValues: blueprints.map { ($0.name, $0) })
        self.options = options
        self.events = events
        self.logger = logger
    }

    /// The nodes running now.
    public var running: [String] { slots.withLock { Array($0.keys) }.sorted() }

    public func node(_ name: String) -> EdgeNode? { slots.withLock { $0[name]?.node } }

    /// Starts a node of this host with its plan's applications (serving no address yet).
    public func start(_ name: String) async throws {
        guard let blueprint = blueprints[name] else { throw Failure(description: "\(name) is not a node of this host") }
        let claimed = node(name) == nil && starting.withLock { $0.insert(name).inserted }
        guard claimed else { throw Failure(description: "node \(name) is running already") }
        defer { starting.withLock { _ = $0.remove(name) } }
        let group: MultiThreadedEventLoopGroup
        if let kept = groups.withLock({ $0[name] }) {
            group = kept
        } else {
            if let prefix = options.namespacePrefix {
                group = try NetworkNamespace(prefix + name).eventLoopGroup(threads: options.threadsPerNode)
            } else {
                group = MultiThreadedEventLoopGroup(numberOfThreads: options.threadsPerNode)
            }
            groups.withLock { $0[name] = group }
        }
        var nodeLogger = logger
        nodeLogger[metadataKey: "node"] = "\(name)"
        let node = blueprint.makeNode(events: events, resolver: options.resolver, group: group, logger: nodeLogger)
        do {
            _ = try await node.start()
        } catch {
            await node.abort()
            throw Failure(description: "node \(name) cannot start: \(error)")
        }
        slots.withLock { $0[name] = Slot(node: node, group: group) }
    }

    /// Closes the node's listeners, lets its connections finish for at most `grace`, then ends
    /// those left.
    public func stop(_ name: String, grace: Duration) async {
        guard let slot = slots.withLock({ $0.removeValue(forKey: name) }) else { return }
        slot.thaw()
        await slot.node.stop()
        _ = await slot.node.drain(within: grace)
        await slot.node.abort()
    }

    /// Ends the node at once, as the kernel ends a killed process: every listener and every
    /// connection closes. Its loops stay for its next start.
    public func kill(_ name: String) async {
        guard let slot = slots.withLock({ $0.removeValue(forKey: name) }) else { return }
        slot.thaw()
        await slot.node.abort()
    }

    /// Stalls (or resumes) every loop of the node; false when it is not running.
    public func freeze(_ name: String, _ frozen: Bool) -> Bool {
        guard let slot = slots.withLock({ $0[name] }) else { return false }
        if frozen { slot.freeze() } else { slot.thaw() }
        return true
    }

    /// Answers once every loop of the node has run a task: a frozen or stalled node does not.
    public func ping(_ name: String) async -> Bool {
        guard let slot = slots.withLock({ $0[name] }) else { return false }
        for loop in slot.group.makeIterator() {
            guard (try? await loop.submit {}.get()) != nil else { return false }
        }
        return true
    }

    /// Stops every node, all at once.
    public func stopAll(grace: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            for name in running { group.addTask { await self.stop(name, grace: grace) } }
        }
    }

    /// Stops every node and ends every node's loops, for a host that ends but whose process goes
    /// on (a process that exits needs only `stopAll`).
    public func shutdown(grace: Duration) async {
        await stopAll(grace: grace)
        let all = groups.withLock { groups in
            defer { groups.removeAll() }
            return Array(groups.values)
        }
        for group in all { try? await group.shutdownGracefully() }
    }
}
