import EdgeDNS
import EdgeModel
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

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

    /// The applications the node serves, in the order given; `define` and `remove` change them.
    public var services: [ApplicationService] { serviceTable.withLock { $0 } }
    private let serviceTable: Mutex<[ApplicationService]>
    /// Makes the service of an application defined later, sharing the node's counters, rules and limits.
    private let makeService: @Sendable (Application) -> ApplicationService
    public let events: EventLog
    public let counters: NodeCounters
    /// Open TCP connections against the node's limits.
    public let gate: ConnectionGate
    /// Path measurement and relaying for smart-routed applications, when the node does it.
    public let smartRouter: SmartRouter?
    private let probes: ProbeService?
    private let relayListener = Mutex<(any Channel)?>(nil)
    private let listenAddresses: [IPAddress]
    private let group: any EventLoopGroup
    private let logger: Logger
    /// Listening sockets by application and address, so one address can be retired alone.
    private let channels = Mutex<[ListenerKey: [any Channel]]>([:])
    /// Applications with at most this many ports get a TCP listener per event loop.
    static let spreadPortLimit = 64
    /// Accepted connections not yet closed, so `abort` can end them.
    private let accepted = OpenConnections()
    /// The threads relaying plain TCP applications, once one is served; their listeners by
    /// application and address, as `channels`.
    private let socketRelay = Mutex<SocketRelay?>(nil)
    private let relayed = Mutex<[ListenerKey: [SocketRelay.Listener]]>([:])

    private struct ListenerKey: Hashable {
        var app: String
        var address: IPAddress
    }

    public init(
        applications: [Application], listen: [IPAddress], accessRules: [AccessRule] = [], prefixes: [PrefixInfo] = [],
        configuration: ProxyConfiguration = ProxyConfiguration(), events: EventLog = EventLog(), resolver: (any OriginResolving)? = nil,
        smartRouting: SmartRoutingConfiguration? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "edgesim.node")
    ) {
        let counters = NodeCounters()
        let matcher = AccessRuleMatcher(rules: accessRules, prefixes: prefixes)
        let router = smartRouting.map { SmartRouter(configuration: $0, group: group) }
        self.smartRouter = router
        self.probes = router.map { ProbeService(router: $0, group: group) }
        let gate = ConnectionGate(
            nodeLimit: configuration.maxTCPConnections, applicationLimit: configuration.maxTCPConnectionsPerApplication)
        self.gate = gate
        let makeService: @Sendable (Application) -> ApplicationService = {
            ApplicationService(
                app: $0, configuration: configuration, events: events, counters: counters, matcher: matcher, resolver: resolver,
                smartRouting: router, gate: gate)
        }
        self.makeService = makeService
        self.serviceTable = Mutex(applications.map(makeService))
        self.events = events
        self.counters = counters
        self.listenAddresses = listen
        self.group = group
        self.logger = logger
    }

    /// Binds every application on the node's listen addresses; on any failure, closes those
    /// already bound and throws.
    public func start() async throws -> [Listener] {
        var listeners: [Listener] = []
        do {
            for service in services {
                listeners += try await serve(service, on: addresses(for: service.app))
            }
            try await startSmartRouting()
        } catch {
            await stop()
            throw error
        }
        logger.info("listening", metadata: ["sockets": "\(listeners.count)"])
        return listeners
    }

    /// Starts serving one application on more addresses (a rotation's new ones): every port of
    /// its range on each. On failure nothing new stays bound.
    public func serve(_ appID: String, on addresses: [IPAddress]) async throws -> [Listener] {
        guard let service = services.first(where: { $0.app.id == appID }) else { return [] }
        let already = Set(servedAddresses(appID))
        do {
            return try await serve(service, on: addresses)
        } catch {
            for address in addresses where !already.contains(address) { await retire(appID, address: address) }
            throw error
        }
    }

    /// Adds an application, or changes one: addresses served already keep the definition they
    /// were opened with (their listeners and connections go on), addresses served from now on
    /// take the new one, so a change moves make-before-break with a rotation. True when new.
    @discardableResult
    public func define(_ app: Application) -> Bool {
        let service = makeService(app)
        return serviceTable.withLock { services in
            if let index = services.firstIndex(where: { $0.app.id == app.id }) {
                services[index] = service
                return false
            }
            services.append(service)
            return true
        }
    }

    /// Stops serving an application on every address and forgets it; connections already open
    /// go on. False when the node had no such application.
    @discardableResult
    public func remove(_ appID: String) async -> Bool {
        for address in servedAddresses(appID) { await retire(appID, address: address) }
        return serviceTable.withLock { services in
            guard let index = services.firstIndex(where: { $0.app.id == appID }) else { return false }
            services.remove(at: index)
            return true
        }
    }

    /// Addresses the node serves `appID` on now.
    public func servedAddresses(_ appID: String) -> [IPAddress] {
        let keys = channels.withLock { Array($0.keys) } + relayed.withLock { Array($0.keys) }
        return keys.filter { $0.app == appID }.map(\.address)
    }

    /// Addresses already served are left as they are, so asking twice is harmless.
    private func serve(_ service: ApplicationService, on addresses: [IPAddress]) async throws -> [Listener] {
        var listeners: [Listener] = []
        let already = Set(servedAddresses(service.app.id))
        let ports = service.app.edge.ports.first...service.app.edge.ports.last
        // A listener per loop for a few ports; a range of many keeps one socket per port.
        let spread = ports.count <= Self.spreadPortLimit
        for address in addresses where !already.contains(address) {
            for port in ports {
                let endpoint = Endpoint(address, port)
                let key = ListenerKey(app: service.app.id, address: address)
                do {
                    if service.configuration.socketRelay, SocketRelay.serves(service) {
                        let bound = try await relayListen(service, at: endpoint, spread: spread)
                        relayed.withLock { $0[key, default: []].append(contentsOf: bound) }
                    } else {
                        let bound = try await bind(service, at: endpoint, spread: spread)
                        channels.withLock { $0[key, default: []].append(contentsOf: bound) }
                    }
                } catch {
                    throw BindError(endpoint: endpoint, transport: service.app.edge.transport, what: service.app.id, underlying: error)
                }
                listeners.append(Listener(app: service.app.id, transport: service.app.edge.transport, endpoint: endpoint))
            }
        }
        return listeners
    }

    /// Answers the peers' probes and starts measuring; accepts connections relayed by peers.
    private func startSmartRouting() async throws {
        guard let router = smartRouter, let probes else { return }
        let endpoint = Endpoint(router.configuration.address, router.configuration.port)
        let services = Dictionary(self.services.map { ($0.app.id, $0) }, uniquingKeysWith: { first, _ in first })
        let headerTimeout = self.services.first?.configuration.headerTimeout ?? .seconds(10)
        do {
            try await probes.start(services: services)
        } catch {
            throw BindError(endpoint: endpoint, transport: .udp, what: "smart routing probes", underlying: error)
        }
        do {
            // Made on the group's own thread: that puts the socket in the group's namespace, if any.
            let channel = try await group.onLoop { [group, accepted] loop in
                ServerBootstrap(group: loop, childGroup: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            accepted.track(channel)
                            try channel.pipeline.syncOperations.addHandler(
                                RelayHeaderHandler(services: services, router: router, headerTimeout: headerTimeout))
                        }
                    }
                    .bind(to: endpoint.socketAddress)
            }.get()
            relayListener.withLock { $0 = channel }
        } catch {
            throw BindError(endpoint: endpoint, transport: .tcp, what: "smart routing relays", underlying: error)
        }
        logger.info(
            "smart routing", metadata: ["peers": "\(router.configuration.peers.count)", "origins": "\(router.configuration.origins.count)"])
    }

    /// Stops accepting on one address of an application. TCP connections already accepted go on
    /// (closing a listening socket leaves its accepted connections alone); UDP flows through that
    /// address end with it.
    public func retire(_ appID: String, address: IPAddress) async {
        let open = channels.withLock { $0.removeValue(forKey: ListenerKey(app: appID, address: address)) ?? [] }
        for channel in open { try? await channel.close() }
        let relayedOpen = relayed.withLock { $0.removeValue(forKey: ListenerKey(app: appID, address: address)) ?? [] }
        await socketRelay.withLock({ $0 })?.close(relayedOpen)
    }

    /// Listens for a plain TCP application on the node's relay threads, started the first time.
    private func relayListen(_ service: ApplicationService, at endpoint: Endpoint, spread: Bool) async throws -> [SocketRelay.Listener] {
        let loops = Array(group.makeIterator())
        let spread = spread && loops.count > 1
        if spread { try await loops[0].submit { try Self.checkNothingListens(on: endpoint) }.get() }
        var relay = socketRelay.withLock { $0 }
        if relay == nil {
            let made = try await SocketRelay(group: group)
            relay = socketRelay.withLock { current in
                if let current { return current }
                current = made
                return made
            }
            if relay !== made { made.finish() }
        }
        return try await relay!.listen(service, at: endpoint, spread: spread)
    }

    /// Whether the relay threads have ended; nil when they never started.
    var socketRelayEnded: Bool? { socketRelay.withLock { $0 }?.hasEnded }

    /// TCP connections accepted and not yet closed.
    public var openConnections: Int { counters[.tcpAccepted] - counters[.tcpClosed] }

    /// Waits (checking every 20 ms) until no TCP connection is open, for at most `limit`; true
    /// when they all finished.
    public func drain(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while openConnections > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return openConnections == 0
    }

    /// Ends the node as a killed process ends: every listener closes, then every connection it
    /// accepted (the relayed origin side closes with it). Its event loops are left running, so
    /// work still on its way to them (a DNS answer, say) lands rather than being lost.
    public func abort() async {
        await stop()
        await accepted.closeAll()
        await socketRelay.withLock({ $0 })?.abort()
    }

    /// Closes every listener. Connections already accepted are left to finish (the process
    /// that owns the node ends them when it exits).
    public func stop() async {
        let open = channels.withLock { channels in
            defer { channels.removeAll() }
            return channels.values.flatMap { $0 }
        }
        for channel in open { try? await channel.close() }
        let relayedOpen = relayed.withLock { relayed in
            defer { relayed.removeAll() }
            return relayed.values.flatMap { $0 }
        }
        if let relay = socketRelay.withLock({ $0 }) {
            await relay.close(relayedOpen)
            // Its threads end with the last connection.
            relay.finish()
        }
        await probes?.stop()
        try? await relayListener.withLock({ $0 })?.close()
        await smartRouter?.close()
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

    /// The sockets serving one application on one endpoint. TCP gets a listener per event loop
    /// when `spread` (SO_REUSEPORT: the kernel spreads new connections over them, and each
    /// connection stays on the loop that accepted it, with no hand-over between threads), else
    /// one listener handing connections to the group's loops in turn.
    private func bind(_ service: ApplicationService, at endpoint: Endpoint, spread: Bool) async throws -> [any Channel] {
        let configuration = service.configuration
        switch service.app.edge.transport {
        case .tcp:
            let accepted = self.accepted
            let loops = Array(group.makeIterator())
            guard spread, loops.count > 1 else {
                // Made on the group's own thread: that puts the socket in the group's namespace, if any.
                return [
                    try await group.onLoop { [group] loop in
                        ServerBootstrap(group: loop, childGroup: group)
                            .serverChannelOption(.backlog, value: 1024)
                            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                            .childChannelInitializer { Self.accept($0, service: service, accepted: accepted) }
                            .bind(to: endpoint.socketAddress)
                    }.get()
                ]
            }
            // Listeners sharing a port with SO_REUSEPORT would share it with another program's too:
            // first make sure nothing listens there.
            try await loops[0].submit { try Self.checkNothingListens(on: endpoint) }.get()
            var listeners: [any Channel] = []
            do {
                for loop in loops {
                    let listener = try await loop.flatSubmit {
                        ServerBootstrap(group: loop, childGroup: loop)
                            .serverChannelOption(.backlog, value: 1024)
                            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                            .serverChannelOption(
                                ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: CInt(SO_REUSEPORT))),
                                value: 1
                            )
                            .childChannelInitializer { Self.accept($0, service: service, accepted: accepted) }
                            .bind(to: endpoint.socketAddress)
                    }.get()
                    listeners.append(listener)
                }
            } catch {
                for listener in listeners { try? await listener.close() }
                throw error
            }
            return listeners
        case .udp:
            return [
                try await group.onLoop { loop in
                    DatagramBootstrap(group: loop)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(UDPListenerHandler(service: service))
                            }
                        }
                        .bind(to: endpoint.socketAddress)
                }.get()
            ]
        }
    }

    /// Sets up a TCP connection the node accepted: the relay, the session and its record, or a
    /// refusal when the node or the application is at its limit.
    private static func accept(_ channel: any Channel, service: ApplicationService, accepted: OpenConnections) -> EventLoopFuture<Void> {
        let configuration = service.configuration
        return channel.eventLoop.makeCompletedFuture {
            try configuration.configure(channel, noDelay: true)
            service.counters.add(.tcpAccepted)
            let record = ConnectionRecord(service: service)
            if let limit = service.gate.enter(service.app.id) {
                // Over a limit: reset at once, and say so once the addresses are known.
                service.counters.add(.tcpRefusedLimit)
                try channel.pipeline.syncOperations.addHandler(LimitRefusal(record: record, reason: limit))
                // Counted closed too, or the node would wait for it to drain.
                channel.closeFuture.whenComplete { _ in service.counters.add(.tcpClosed) }
                return
            }
            let relay = RelayHandler(
                onRead: { record.addIn($0) }, onError: { record.failed($0, onOriginSide: false) }, onHeld: { record.held() }
            )
            let watcher = IdleWatcher(idle: configuration.tcpIdleTimeout, halfClosed: configuration.tcpHalfClosedTimeout) {
                record.timedOut($0)
            }
            let helloReader = service.app.tls == .off ? nil : ClientHelloReader(timeout: configuration.headerTimeout)
            try channel.pipeline.syncOperations.addHandler(watcher)
            if let helloReader { try channel.pipeline.syncOperations.addHandler(helloReader) }
            try channel.pipeline.syncOperations.addHandlers(
                relay, TCPSessionHandler(service: service, relay: relay, record: record, helloReader: helloReader))
            let bound = NIOLoopBound(record, eventLoop: channel.eventLoop)
            accepted.insert(channel)
            channel.closeFuture.whenComplete { _ in
                accepted.remove(channel)
                // The place is free before the event says so.
                service.gate.leave(service.app.id)
                bound.value.closed()
                service.counters.add(.tcpClosed)
            }
        }
    }

    /// Throws (EADDRINUSE) when a socket listens on `endpoint` already. Run it on the thread that
    /// will make the listeners, so it looks in their network namespace.
    private static func checkNothingListens(on endpoint: Endpoint) throws {
        let probe = socket(endpoint.address.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(probe) }
        var one: Int32 = 1
        // SO_REUSEADDR: a connection of an earlier listener waiting out TIME_WAIT is no conflict.
        _ = setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = endpoint.socketAddress.withSockAddr { address, length in Glibc.bind(probe, address, socklen_t(length)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
    }
}

/// A socket the node could not open, with where and what for.
public struct BindError: Error, CustomStringConvertible {
    public var endpoint: Endpoint
    public var transport: Transport
    public var what: String
    public var underlying: any Error

    public var description: String { "cannot listen on \(transport.rawValue) \(endpoint) for \(what): \(underlying)" }
}
