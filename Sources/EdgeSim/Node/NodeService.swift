import EdgeModel
import EdgeProxy
import Logging
import ServiceLifecycle

/// An edge node as a long-lived service: binds its listeners, serves until the service group
/// shuts down (SIGINT, SIGTERM), then closes every socket.
public final class NodeService: Service {
    public enum State: Sendable {
        case idle
        case running([EdgeNode.Listener])
        case stopped
    }

    public let node: EdgeNode
    private let logger: Logger
    private let onReady: @Sendable ([EdgeNode.Listener]) -> Void
    /// How long open connections may take to finish after the listeners close. Default 5 s.
    public let drain: Duration

    public init(
        node: EdgeNode, logger: Logger, drain: Duration = .seconds(5), onReady: @escaping @Sendable ([EdgeNode.Listener]) -> Void = { _ in }
    ) {
        self.node = node
        self.drain = drain
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        let listeners = try await node.start()
        onReady(listeners)
        try? await gracefulShutdown()
        logger.info("stopping")
        await node.stop()
        // Connections already accepted get a moment to finish, as on a real node taken out of service.
        if !(await node.drain(within: drain)) {
            logger.info("stopped with connections still open", metadata: ["open": "\(node.openConnections)"])
        }
    }
}
