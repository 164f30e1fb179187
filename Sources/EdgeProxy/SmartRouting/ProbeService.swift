import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// Measures, every interval, the round trip to every peer edge (a datagram exchange on the
/// peers' probe port, whose reply carries the peer's own table) and to every smart-routed
/// origin (a TCP connect, closed at once); answers the peers' probes the same way.
final class ProbeService: Sendable {
    private let router: SmartRouter
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)
    private let task = Mutex<RepeatedTask?>(nil)
    private let pending = Mutex<[UInt64: (peer: String, sent: NIODeadline)]>([:])
    private let nextToken = Atomic<UInt64>(1)

    init(router: SmartRouter, group: any EventLoopGroup) {
        self.router = router
        self.group = group
    }

    private var configuration: SmartRoutingConfiguration { router.configuration }

    /// Binds the probe socket; it also carries the smart-routed UDP flows other edges relay
    /// through this one, for `services`.
    func start(services: [String: ApplicationService]) async throws {
        let endpoint = Endpoint(configuration.address, configuration.port)
        let router = self.router
        // Made on the group's own thread: that puts the socket in the group's namespace, if any.
        let bound = try await group.onLoop { loop in
            DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ProbeHandler(service: self, relays: UDPRelayTable(services: services, router: router)))
                    }
                }
                .bind(to: endpoint.socketAddress)
        }.get()
        channel.withLock { $0 = bound }
        let interval = TimeAmount.nanoseconds(
            configuration.interval.components.seconds * 1_000_000_000
                + configuration.interval.components.attoseconds / 1_000_000_000)
        let repeated = bound.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: interval) { _ in
            self.round()
        }
        task.withLock { $0 = repeated }
    }

    /// One round: unanswered probes from before count as lost, then every target is probed.
    private func round() {
        guard let channel = channel.withLock({ $0 }) else { return }
        let now = NIODeadline.now()
        let timeout = TimeAmount.nanoseconds(
            configuration.probeTimeout.components.seconds * 1_000_000_000 + configuration.probeTimeout.components.attoseconds
                / 1_000_000_000)
        let expired = pending.withLock { pending in
            let old = pending.filter { now - $0.value.sent >= timeout }
            for token in old.keys { pending[token] = nil }
            return old.values.map(\.peer)
        }
        for peer in expired { follow(router.measured(peer, rtt: nil)) {} }
        for peer in configuration.peers.keys.sorted() { probe(peer: peer, on: channel) }
        for origin in configuration.origins { probe(origin, on: channel.eventLoop) }
        for origin in configuration.udpOrigins { probe(udp: origin, on: channel.eventLoop) }
    }

    /// A datagram to a UDP origin, framed as its applications frame theirs, timed to the first
    /// reply on a socket of its own.
    private func probe(udp origin: UDPProbeTarget, on loop: any EventLoop) {
        let router = self.router
        let timeout = TimeAmount.nanoseconds(configuration.probeTimeout.components.seconds * 1_000_000_000)
        let key = SmartRouter.key(origin.endpoint.address)
        let answered = loop.makePromise(of: Void.self)
        router.probeSent(bytes: 0)
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RelayReplyHandler { _ in answered.succeed() })
                }
            }
            .bind(to: Endpoint(configuration.address, 0).socketAddress)
            .flatMap { channel in channel.connect(to: origin.endpoint.socketAddress).map { channel } }
            .whenComplete { result in
                guard case .success(let channel) = result else {
                    answered.fail(ChannelError.connectTimeout(timeout))
                    return
                }
                let me = channel.localAddress.flatMap(Endpoint.init) ?? Endpoint(origin.endpoint.address, 0)
                var datagram = channel.allocator.buffer(capacity: 80)
                switch origin.proxyProtocol {
                case .simple: datagram.writeSimpleProxyHeader(SimpleProxyHeader(client: me, proxy: me))
                case .v2: datagram.writeProxyV2(ProxyHeader.proxied(transport: .datagram, source: me, destination: origin.endpoint))
                case .off, .v1: break
                }
                datagram.writeString("edgesim probe")
                // Timed from the write: making the socket is no part of the path.
                let started = NIODeadline.now()
                channel.writeAndFlush(datagram, promise: nil)
                let timer = loop.scheduleTask(in: timeout) { answered.fail(ChannelError.connectTimeout(timeout)) }
                answered.futureResult.whenComplete { outcome in
                    timer.cancel()
                    channel.close(promise: nil)
                    switch outcome {
                    case .success:
                        let elapsed = NIODeadline.now() - started
                        self.follow(router.measured(key, rtt: .nanoseconds(elapsed.nanoseconds))) { self.probe(udp: origin, on: loop) }
                    case .failure:
                        self.follow(router.measured(key, rtt: nil)) {}
                    }
                }
            }
    }

    private func probe(peer: String, on channel: any Channel) {
        guard let address = configuration.peers[peer] else { return }
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        var buffer = channel.allocator.buffer(capacity: 16)
        buffer.writeProbeMessage(.request(token: token))
        pending.withLock { $0[token] = (peer, .now()) }
        router.probeSent(bytes: buffer.readableBytes)
        let envelope = AddressedEnvelope(remoteAddress: Endpoint(address, configuration.port).socketAddress, data: buffer)
        channel.writeAndFlush(envelope, promise: nil)
    }

    /// Acts on what a result asks: a sample out of the ordinary is checked at once by another
    /// probe, and a real change is sent to every peer unasked.
    private func follow(_ followup: SmartRouter.Followup, target: () -> Void) {
        if followup.probeAgain { target() }
        guard followup.tellPeers, let channel = channel.withLock({ $0 }) else { return }
        var update = channel.allocator.buffer(capacity: 512)
        update.writeProbeMessage(.update(table: router.table()))
        for address in configuration.peers.values {
            router.count { $0.probeBytes += update.readableBytes }
            channel.writeAndFlush(
                AddressedEnvelope(remoteAddress: Endpoint(address, configuration.port).socketAddress, data: update), promise: nil)
        }
    }

    private func probe(_ origin: Endpoint, on loop: any EventLoop) {
        let router = self.router
        let started = NIODeadline.now()
        let timeout = TimeAmount.nanoseconds(configuration.probeTimeout.components.seconds * 1_000_000_000)
        router.probeSent(bytes: 0)
        ClientBootstrap(group: loop).connectTimeout(timeout).connect(to: origin.socketAddress).whenComplete { result in
            let key = SmartRouter.key(origin.address)
            switch result {
            case .success(let channel):
                let elapsed = NIODeadline.now() - started
                channel.close(promise: nil)
                self.follow(router.measured(key, rtt: .nanoseconds(elapsed.nanoseconds))) { self.probe(origin, on: loop) }
            case .failure:
                self.follow(router.measured(key, rtt: nil)) {}
            }
        }
    }

    /// A datagram arrived: a peer's probe is answered with our table; a reply to ours is measured.
    fileprivate func received(
        _ message: ProbeMessage, size: Int, from envelope: AddressedEnvelope<ByteBuffer>, context: ChannelHandlerContext
    ) {
        switch message {
        case .relay:
            break
        case .request(let token):
            var reply = context.channel.allocator.buffer(capacity: 512)
            reply.writeProbeMessage(.reply(token: token, table: router.table()))
            router.count { $0.probeBytes += reply.readableBytes }
            context.writeAndFlush(NIOAny(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
        case .reply(let token, let table):
            // A late reply is no measurement, but its table is still the peer's news.
            let sent = pending.withLock { $0.removeValue(forKey: token) }
            guard let peer = sent?.peer ?? peer(at: envelope.remoteAddress) else { return }
            router.received(table, from: peer, bytes: size)
            guard let sent else { return }
            let elapsed = NIODeadline.now() - sent.sent
            let channel = context.channel
            follow(router.measured(peer, rtt: .nanoseconds(elapsed.nanoseconds))) { self.probe(peer: peer, on: channel) }
        case .update(let table):
            guard let peer = peer(at: envelope.remoteAddress) else { return }
            router.received(table, from: peer, bytes: size)
        }
    }

    /// The peer a datagram came from; nil for anyone else.
    private func peer(at address: SocketAddress) -> String? {
        guard let from = Endpoint(address)?.address.unmapped else { return nil }
        return configuration.peers.first { $0.value == from }?.key
    }

    func stop() async {
        task.withLock { $0?.cancel() }
        let open = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await open?.close()
    }
}

/// Reads every datagram on the probe port: relayed UDP goes to the relay table, the rest to the
/// service. Anything that is not a probe message is dropped.
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let service: ProbeService
    private let relays: UDPRelayTable
    private var sweep: RepeatedTask?

    init(service: ProbeService, relays: UDPRelayTable) {
        self.service = service
        self.relays = relays
    }

    func channelActive(context: ChannelHandlerContext) {
        let relays = NIOLoopBound(self.relays, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in relays.value.expireIdle() }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweep?.cancel()
        relays.closeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var bytes = envelope.data
        let size = bytes.readableBytes
        guard let message = try? bytes.readProbeMessage() else { return }
        if case .relay(let datagram) = message, let sender = Endpoint(envelope.remoteAddress) {
            relays.forward(datagram, from: sender, on: context.channel)
        } else {
            service.received(message, size: size, from: envelope, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An unreachable peer shows as a lost probe; the socket stays open.
    }
}
