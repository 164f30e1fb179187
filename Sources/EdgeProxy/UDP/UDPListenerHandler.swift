import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix

/// Serves one UDP edge port: a flow table keyed by client address and port, one origin socket
/// per flow, replies sent back to the right client, idle expiry and a cap with LRU eviction.
final class UDPListenerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let service: ApplicationService
    private var flows: [Endpoint: UDPFlow] = [:]
    /// Clients by when their flow was last used: a flood of new clients must not cost a scan of
    /// the whole table each to find the flow to evict.
    private var recency = RecencyList<Endpoint>()
    private var context: ChannelHandlerContext?
    private var edge: Endpoint?
    private var sweep: RepeatedTask?
    /// Clients already reported as filtered or fragmented, so a flood makes one event each.
    private var reported: Set<Endpoint> = []

    init(service: ApplicationService) {
        self.service = service
    }

    private var configuration: ProxyConfiguration { service.configuration }
    private var counters: NodeCounters { service.counters }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        edge = context.channel.localAddress.flatMap(Endpoint.init)
        let interval = TimeAmount.nanoseconds(max(configuration.udpIdleTimeout.nanoseconds / 4, 10_000_000))
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            this.value.expireIdleFlows()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweep?.cancel()
        for flow in flows.values { finish(flow, flow.machine.listenerClosed()) }
        flows.removeAll()
        recency = RecencyList()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let client = Endpoint(envelope.remoteAddress), let edge else { return }
        counters.add(.udpDatagramsIn)
        let limit = client.address.unmapped.isIPv4 ? configuration.udpMaxPayloadIPv4 : configuration.udpMaxPayloadIPv6
        guard envelope.data.readableBytes <= limit else {
            counters.add(.udpDroppedFragmented)
            reportOnce(client) {
                service.event(
                    .clientFiltered, client: client, edge: edge, status: .clientFragmented,
                    message: "datagram of \(envelope.data.readableBytes) bytes would have been fragmented; dropped")
            }
            return
        }
        if let decision = service.accessDecision(for: client.address), !decision.allowed {
            counters.add(.udpDroppedFiltered)
            reportOnce(client) {
                service.event(
                    .clientFiltered, client: client, edge: edge, status: .blocked,
                    message: decision.rule.map { "\($0.action.rawValue) \($0.target)" })
            }
            return
        }
        let flow: UDPFlow
        if let existing = flows[client] {
            flow = existing
            flow.lastActivity = .now()
            recency.touch(client)
        } else {
            flow = openFlow(client: client, edge: edge, context: context)
        }
        flow.bytesIn += UInt64(envelope.data.readableBytes)
        let framed = flow.frame(envelope.data, mode: service.app.proxyProtocol, allocator: context.channel.allocator)
        switch flow.machine.clientDatagram() {
        case .forward: flow.originChannel?.writeAndFlush(framed, promise: nil)
        case .queue: flow.pending.append(framed)
        default: counters.add(.udpDroppedPending)
        }
    }

    /// The flow with nothing either way for longest.
    private func leastRecentlyUsed() -> UDPFlow? {
        recency.oldest.flatMap { flows[$0] }
    }

    private func reportOnce(_ client: Endpoint, _ report: () -> Void) {
        guard reported.count < 10_000, reported.insert(client).inserted else { return }
        report()
    }

    private func openFlow(client: Endpoint, edge: Endpoint, context: ChannelHandlerContext) -> UDPFlow {
        if flows.count >= configuration.udpMaxFlows, let oldest = leastRecentlyUsed() {
            counters.add(.udpFlowsEvicted)
            finish(oldest, oldest.machine.evicted())
        }
        let flow = UDPFlow(client: client, edge: edge, pendingLimit: configuration.udpPendingLimit)
        flow.lastActivity = .now()
        flows[client] = flow
        recency.touch(client)
        counters.add(.udpFlowsOpened)
        let loop = context.eventLoop
        let this = NIOLoopBound(self, eventLoop: loop)
        let boundFlow = NIOLoopBound(flow, eventLoop: loop)
        let configuration = service.configuration
        service.origins.candidates(edgePort: edge.port, on: loop).flatMap { endpoints -> EventLoopFuture<(any Channel, Endpoint)> in
            guard let origin = endpoints.first else {
                return loop.makeFailedFuture(OriginResolutionError(status: .resolveNoAddress, message: "no origin for port \(edge.port)"))
            }
            let originHandler = NIOLoopBound(UDPOriginHandler(listener: this.value, flow: boundFlow.value), eventLoop: loop)
            // Smart routing: the flow's socket talks to the first relay, every datagram wrapped.
            let router = this.value.service.smartRouting
            let via = router?.route(to: origin.address) ?? []
            boundFlow.value.via = via
            let app = this.value.service.app.id
            let bootstrap = DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(originHandler.value)
                        if !via.isEmpty {
                            try channel.pipeline.syncOperations.addHandler(
                                RelayDatagramFramer(app: app, origin: origin, via: Array(via.dropFirst())))
                        }
                    }
                }
            if let router, let first = via.first, let relay = router.endpoint(of: first) {
                return bootstrap.bind(to: Endpoint(router.configuration.address, 0).socketAddress).flatMap { channel in
                    channel.connect(to: relay.socketAddress).map { (channel, origin) }
                }
            }
            guard let source = configuration.sourceAddress(towards: origin) else {
                return bootstrap.connect(to: origin.socketAddress).map { ($0, origin) }
            }
            // Bound to the source first, then connected: the flow's datagrams come from the node's address.
            return bootstrap.bind(to: source).flatMap { channel in
                channel.connect(to: origin.socketAddress).map { (channel, origin) }
            }
        }.whenComplete { result in
            let flow = boundFlow.value
            switch result {
            case .success(let (channel, origin)):
                guard flow.machine.originOpened() == .flush else {
                    channel.close(promise: nil)
                    return
                }
                flow.origin = origin
                flow.originChannel = channel
                this.value.service.event(.connect, client: flow.client, edge: flow.edge, origin: origin, status: .ok, via: flow.via)
                for datagram in flow.pending { channel.write(datagram, promise: nil) }
                flow.pending.removeAll()
                channel.flush()
            case .failure(let error):
                let status = (error as? OriginResolutionError)?.status ?? StatusCode(connectError: error)
                this.value.service.event(.originError, client: flow.client, edge: flow.edge, status: status, message: "\(error)")
                this.value.finish(flow, flow.machine.originFailed())
            }
        }
        return flow
    }

    /// A reply from the origin, already stripped of any SPP header, goes back to the client.
    func reply(_ payload: ByteBuffer, for flow: UDPFlow) {
        guard let context, flow.machine.originReply() == .deliver else { return }
        flow.lastActivity = .now()
        if flows[flow.client] === flow { recency.touch(flow.client) }
        if flow.firstReply == nil { flow.firstReply = .now() }
        flow.bytesOut += UInt64(payload.readableBytes)
        counters.add(.udpDatagramsOut)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: flow.client.socketAddress, data: payload)), promise: nil)
    }

    private func expireIdleFlows() {
        let cutoff = NIODeadline.now() - configuration.udpIdleTimeout
        for flow in flows.values where flow.lastActivity < cutoff {
            counters.add(.udpFlowsExpired)
            finish(flow, flow.machine.expired())
        }
    }

    /// Carries out a flow's end: its socket closed, its place in the table freed (unless a new
    /// flow of the same client has it already), and a disconnect event when it had reached its origin.
    private func finish(_ flow: UDPFlow, _ action: UDPFlowStateMachine.Action) {
        guard case .close(let status) = action else { return }
        if flows[flow.client] === flow {
            flows[flow.client] = nil
            recency.remove(flow.client)
        }
        flow.originChannel?.close(promise: nil)
        guard let status, flow.origin != nil else { return }
        service.event(
            .disconnect, client: flow.client, edge: flow.edge, origin: flow.origin, bytesIn: flow.bytesIn, bytesOut: flow.bytesOut,
            duration: flow.lastActivity - flow.started, originRTT: flow.firstReply.map { $0 - flow.started }, status: status,
            via: flow.via)
    }
}

/// Reads replies on a flow's origin socket and hands them to the listener.
final class UDPOriginHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let listener: UDPListenerHandler
    private let flow: UDPFlow
    private let stripsHeader: Bool
    private let counters: NodeCounters

    init(listener: UDPListenerHandler, flow: UDPFlow) {
        self.listener = listener
        self.flow = flow
        stripsHeader = listener.serviceProxyMode == .simple
        counters = listener.serviceCounters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var payload = unwrapInboundIn(data).data
        if stripsHeader {
            // The origin must echo the header; a reply without a valid one is dropped, never guessed at.
            guard (try? payload.readSimpleProxyHeader()) != nil else {
                counters.add(.udpDroppedBadReply)
                return
            }
        }
        listener.reply(payload, for: flow)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable arrives as ECONNREFUSED on a connected socket; the flow lives on.
    }
}

extension UDPListenerHandler {
    var serviceProxyMode: ProxyProtocolMode { service.app.proxyProtocol }
    var serviceCounters: NodeCounters { service.counters }
}
