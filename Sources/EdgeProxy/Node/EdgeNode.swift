import EdgeDNS
import EdgeModel
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One edge node: serves every application on each of its listen addresses, relaying TCP and
/// UDP to the origins. Port ranges become one socket per port, all on the same event loops.
public final class EdgeNode: Sendable {
    /// A socket the node listens on.
    public struct Listener: Sendable, Hashable, CustomStringConvertible {
        public var app: String
        public var transport: Transport
        public var endpoint: Endpoint

        public var description: String { "\(transport.rawValue) \(endpoint) (\(app))" }
    }

    public let services: [ApplicationService]
    public let events: EventLog
    public let counters: NodeCounters
    private let listenAddresses: [IPAddress]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let channels = Mutex<[any Channel]>([])

    public init(
        applications: [Application], listen: [IPAddress], accessRules: [AccessRule] = [], prefixes: [PrefixInfo] = [],
        configuration: ProxyConfiguration = ProxyConfiguration(), events: EventLog = EventLog(), resolver: (any OriginResolving)? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "edgesim.node")
    ) {
        let counters = NodeCounters()
        let matcher = AccessRuleMatcher(rules: accessRules, prefixes: prefixes)
        self.services = applications.map {
            ApplicationService(app: $0, configuration: configuration, events: events, counters: counters, matcher: matcher, resolver: resolver)
        }
        self.events = events
        self.counters = counters
        self.listenAddresses = listen
        self.group = group
        self.logger = logger
    }

    /// Binds every listener; on any failure, closes those already bound and throws.
    public func start() async throws -> [Listener] {
        var listeners: [Listener] = []
        do {
            for service in services {
                for address in addresses(for: service.app) {
                    for port in service.app.edge.ports.first...service.app.edge.ports.last {
                        let endpoint = Endpoint(address, port)
                        let channel = try await bind(service, at: endpoint)
                        channels.withLock { $0.append(channel) }
                        listeners.append(Listener(app: service.app.id, transport: service.app.edge.transport, endpoint: endpoint))
                    }
                }
            }
        } catch {
            await stop()
            throw error
        }
        logger.info("listening", metadata: ["sockets": "\(listeners.count)"])
        return listeners
    }

    /// Closes every listener. Open connections close as their listeners go.
    public func stop() async {
        let open = channels.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in open { try? await channel.close() }
    }

    /// Listen addresses of the family the app's edge_ips allow (static apps: their own addresses
    /// when listed among the node's).
    private func addresses(for app: Application) -> [IPAddress] {
        switch app.edgeIPs {
        case .dynamic(.all): return listenAddresses
        case .dynamic(.ipv4): return listenAddresses.filter(\.isIPv4)
        case .dynamic(.ipv6): return listenAddresses.filter { !$0.isIPv4 }
        case .static(let ips): return listenAddresses.filter(ips.contains)
        }
    }

    private func bind(_ service: ApplicationService, at endpoint: Endpoint) async throws -> any Channel {
        let configuration = service.configuration
        switch service.app.edge.transport {
        case .tcp:
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: configuration.writeBufferWaterMark)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        service.counters.add(.tcpAccepted)
                        let record = ConnectionRecord(service: service)
                        let relay = RelayHandler(onRead: { record.addIn($0) }, onError: { record.failed($0, onOriginSide: false) })
                        try channel.pipeline.syncOperations.addHandlers(relay, TCPSessionHandler(service: service, relay: relay, record: record))
                        let bound = NIOLoopBound(record, eventLoop: channel.eventLoop)
                        channel.closeFuture.whenComplete { _ in bound.value.closed() }
                    }
                }
                .bind(to: endpoint.socketAddress).get()
        case .udp:
            return try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPListenerHandler(service: service))
                    }
                }
                .bind(to: endpoint.socketAddress).get()
        }
    }
}
