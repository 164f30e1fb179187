import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// Plays the internet's part on one network stack: owns the public (anycast) addresses, hands
/// each TCP connection or UDP flow to the host its router picks (the nearest live edge node for
/// the client it came from), connecting from the client's own address, and carries the bytes
/// across the path's latency, jitter, loss and bandwidth in both directions.
public final class LoopbackFabric: Sendable {
    public struct Counters: Sendable, Hashable {
        public var connections = 0
        /// Connections no target would take.
        public var unroutable = 0
        public var flows = 0
        public var datagramsLost = 0
    }

    private let router: any FabricRouter
    private let group: any EventLoopGroup
    private let listeners = Mutex<[Endpoint: any Channel]>([:])
    private let relays = Mutex<[ObjectIdentifier: Relay]>([:])
    private let tapped = Mutex<(any FabricTap)?>(nil)
    let tally = Mutex(Counters())
    /// How long a fabric connect to a target may take before the next one is tried.
    public let connectTimeout: TimeAmount
    public let udpIdleTimeout: TimeAmount

    struct Relay: Sendable {
        var clientHost: String
        var targetHost: String
        var channels: [any Channel]
    }

    public init(
        router: any FabricRouter, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(2), udpIdleTimeout: TimeAmount = .seconds(30)
    ) {
        self.router = router
        self.group = group
        self.connectTimeout = connectTimeout
        self.udpIdleTimeout = udpIdleTimeout
    }

    public var counters: Counters { tally.withLock { $0 } }

    /// What sees every connection and flow made from now on (nil: nothing).
    public func setTap(_ tap: (any FabricTap)?) {
        tapped.withLock { $0 = tap }
    }

    var tap: (any FabricTap)? { tapped.withLock { $0 } }

    /// Starts accepting on a public endpoint.
    public func open(_ endpoint: Endpoint, transport: Transport) async throws {
        let channel: any Channel
        switch transport {
        case .tcp:
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_rcvbuf), value: Self.socketBuffer)
                .childChannelOption(.socketOption(.so_sndbuf), value: Self.socketBuffer)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture { try accepted(channel, at: endpoint) }
                }
                .bind(to: endpoint.socketAddress).get()
        case .udp:
            channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FabricDatagramHandler(fabric: self, endpoint: endpoint))
                    }
                }
                .bind(to: endpoint.socketAddress).get()
        }
        listeners.withLock { $0[endpoint] = channel }
    }

    /// Stops accepting on every port of an address; connections and flows already made go on.
    public func close(address: IPAddress) async {
        let closing = listeners.withLock { listeners in
            let matching = listeners.filter { $0.key.address == address }
            for key in matching.keys { listeners[key] = nil }
            return Array(matching.values)
        }
        for channel in closing { try? await channel.close() }
    }

    /// Breaks every relayed connection whose two ends match, as a cut link or a dead host would.
    public func sever(_ matches: @Sendable (_ clientHost: String, _ targetHost: String) -> Bool) {
        let cut = relays.withLock { relays in relays.values.filter { matches($0.clientHost, $0.targetHost) } }
        for relay in cut { relay.channels.forEach { $0.close(promise: nil) } }
    }

    public func stop() async {
        let open = listeners.withLock { listeners in
            defer { listeners.removeAll() }
            return Array(listeners.values)
        }
        for channel in open { try? await channel.close() }
        let live = relays.withLock { $0.values.flatMap(\.channels) }
        for channel in live { try? await channel.close() }
    }

    func route(from client: IPAddress, to destination: Endpoint) -> FabricRoute? {
        router.route(from: client, to: destination)
    }

    func shape(_ clientHost: String, _ targetHost: String) -> LinkShape? {
        router.shape(from: clientHost, to: targetHost)
    }

    func register(_ relay: Relay, key: ObjectIdentifier) {
        relays.withLock { $0[key] = relay }
    }

    func unregister(_ key: ObjectIdentifier) {
        _ = relays.withLock { $0.removeValue(forKey: key) }
    }

    // MARK: TCP

    /// Socket buffers of the fabric's own TCP legs. A real path holds what the two ends' sockets
    /// and the links hold; the fabric's extra sockets (on loopback, where no delay needs a large
    /// window) are kept small so they do not add megabytes of their own, and a slow receiver
    /// slows the sender about as it would on the path being emulated.
    static let socketBuffer: SocketOptionValue = 64 * 1024

    private func accepted(_ inbound: any Channel, at endpoint: Endpoint) throws {
        guard let client = inbound.remoteAddress.flatMap(Endpoint.init), let route = route(from: client.address.unmapped, to: endpoint),
            !route.targets.isEmpty
        else {
            tally.withLock { $0.unroutable += 1 }
            inbound.close(promise: nil)
            return
        }
        let first = route.targets[0]
        let towardsTarget = DelayedForwarder(shape: first.shape) { [self] in shape(route.clientHost, first.host) }
        try inbound.pipeline.syncOperations.addHandler(towardsTarget)
        let loop = inbound.eventLoop
        let forwarder = NIOLoopBound(towardsTarget, eventLoop: loop)
        connect(route.targets[...], clientHost: route.clientHost, on: loop).whenComplete { [self] result in
            switch result {
            case .failure:
                tally.withLock { $0.unroutable += 1 }
                inbound.close(promise: nil)
            case .success(let (outbound, target)):
                tally.withLock { $0.connections += 1 }
                let key = ObjectIdentifier(inbound)
                register(Relay(clientHost: route.clientHost, targetHost: target.host, channels: [inbound, outbound]), key: key)
                inbound.closeFuture.whenComplete { [self] _ in unregister(key) }
                let towardsClient = DelayedForwarder(shape: target.shape) { [self] in shape(route.clientHost, target.host) }
                DelayedForwarder.pair(forwarder.value, towardsClient)
                if let tap, let client = inbound.remoteAddress.flatMap(Endpoint.init),
                    let source = outbound.localAddress.flatMap(Endpoint.init),
                    let sink = tap.opened(
                        TappedRelay(
                            transport: .tcp, clientHost: route.clientHost, targetHost: target.host, client: client,
                            publicEndpoint: endpoint,
                            fabricSource: source, target: target.endpoint))
                {
                    forwarder.value.tap = { bytes in
                        if let bytes { sink.carried(bytes, towardsTarget: true) } else { sink.ended(towardsTarget: true) }
                    }
                    towardsClient.tap = { bytes in
                        if let bytes { sink.carried(bytes, towardsTarget: false) } else { sink.ended(towardsTarget: false) }
                    }
                }
                do {
                    try outbound.pipeline.syncOperations.addHandler(towardsClient)
                    let outboundContext = try outbound.pipeline.syncOperations.context(handler: towardsClient)
                    towardsClient.attach(to: inbound, context: outboundContext)
                    let inboundContext = try inbound.pipeline.syncOperations.context(handler: forwarder.value)
                    forwarder.value.attach(to: outbound, context: inboundContext)
                } catch {
                    inbound.close(promise: nil)
                    outbound.close(promise: nil)
                }
            }
        }
    }

    /// Tries each target in turn (a refused or timed-out connect moves on to the next nearest).
    private func connect(
        _ targets: ArraySlice<FabricTarget>, clientHost: String, on loop: any EventLoop
    ) -> EventLoopFuture<(any Channel, FabricTarget)> {
        guard let target = targets.first else {
            return loop.makeFailedFuture(ChannelError.connectTimeout(connectTimeout))
        }
        return ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: Self.socketBuffer)
            .channelOption(.socketOption(.so_sndbuf), value: Self.socketBuffer)
            .bind(to: Endpoint(target.source, 0).socketAddress)
            .connect(to: target.endpoint.socketAddress)
            .map { ($0, target) }
            .flatMapError { [self] _ in connect(targets.dropFirst(), clientHost: clientHost, on: loop) }
    }
}
