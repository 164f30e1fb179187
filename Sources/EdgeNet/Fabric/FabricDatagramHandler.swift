import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix

/// The fabric's side of one public UDP endpoint: each client address is a flow with its own
/// socket towards the target host (bound to the client's address), and datagrams cross the
/// path both ways with its delay and loss.
final class FabricDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private final class Flow {
        let clientHost: String
        let target: FabricTarget
        var outbound: (any Channel)?
        var pending: [ByteBuffer] = []
        var towardsTarget: LinkSchedule
        var towardsClient: LinkSchedule
        var lastActive = NIODeadline.now()
        var sink: (any TapSink)?

        init(clientHost: String, target: FabricTarget) {
            self.clientHost = clientHost
            self.target = target
            towardsTarget = LinkSchedule(shape: target.shape)
            towardsClient = LinkSchedule(shape: target.shape)
        }
    }

    private let fabric: LoopbackFabric
    private let endpoint: Endpoint
    private var flows: [SocketAddress: Flow] = [:]
    private var sweeper: RepeatedTask?

    init(fabric: LoopbackFabric, endpoint: Endpoint) {
        self.fabric = fabric
        self.endpoint = endpoint
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let idle = fabric.udpIdleTimeout
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
            loopBound.value.sweep(idle: idle)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.cancel()
        for flow in flows.values { flow.outbound?.close(promise: nil) }
        flows = [:]
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let flow: Flow
        if let existing = flows[envelope.remoteAddress] {
            flow = existing
        } else {
            guard let client = Endpoint(envelope.remoteAddress), let route = fabric.route(from: client.address.unmapped, to: endpoint),
                let target = route.targets.first
            else {
                fabric.tally.withLock { $0.unroutable += 1 }
                return
            }
            flow = Flow(clientHost: route.clientHost, target: target)
            flows[envelope.remoteAddress] = flow
            fabric.tally.withLock { $0.flows += 1 }
            open(flow, client: envelope.remoteAddress, context: context)
        }
        flow.lastActive = .now()
        guard let outbound = flow.outbound else { return flow.pending.append(envelope.data) }
        send(envelope.data, on: outbound, flow: flow, context: context)
    }

    private func open(_ flow: Flow, client: SocketAddress, context: ChannelHandlerContext) {
        let listener = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let flowBound = NIOLoopBound(flow, eventLoop: context.eventLoop)
        DatagramBootstrap(group: context.eventLoop)
            .bind(to: Endpoint(flow.target.source, 0).socketAddress)
            .assumeIsolated()
            .whenComplete { result in
                let flow = flowBound.value
                guard case .success(let outbound) = result else {
                    loopBound.value.flows[client] = nil
                    return
                }
                let replies = FabricReplyHandler { buffer in
                    flow.lastActive = .now()
                    loopBound.value.reply(buffer, to: client, flow: flow, listener: listener)
                }
                try? outbound.pipeline.syncOperations.addHandler(replies)
                flow.outbound = outbound
                let fabric = loopBound.value.fabric
                if let tap = fabric.tap, let from = Endpoint(client), let source = outbound.localAddress.flatMap(Endpoint.init) {
                    flow.sink = tap.opened(
                        TappedRelay(
                            transport: .udp, clientHost: flow.clientHost, targetHost: flow.target.host, client: from,
                            publicEndpoint: loopBound.value.endpoint, fabricSource: source, target: flow.target.endpoint))
                }
                let context = try? listener.pipeline.syncOperations.context(handler: loopBound.value)
                for buffer in flow.pending {
                    if let context { loopBound.value.send(buffer, on: outbound, flow: flow, context: context) }
                }
                flow.pending = []
            }
    }

    private func send(_ buffer: ByteBuffer, on outbound: any Channel, flow: Flow, context: ChannelHandlerContext) {
        flow.sink?.carried(buffer, towardsTarget: true)
        guard let shape = fabric.shape(flow.clientHost, flow.target.host) else { return lost() }
        flow.towardsTarget.shape = shape
        guard case .at(let deadline) = flow.towardsTarget.schedule(bytes: buffer.readableBytes, now: DelayedForwarder.now, reliable: false)
        else { return lost() }
        let envelope = AddressedEnvelope(remoteAddress: flow.target.endpoint.socketAddress, data: buffer)
        context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
            outbound.writeAndFlush(envelope, promise: nil)
        }
    }

    private func reply(_ buffer: ByteBuffer, to client: SocketAddress, flow: Flow, listener: any Channel) {
        flow.sink?.carried(buffer, towardsTarget: false)
        guard let shape = fabric.shape(flow.clientHost, flow.target.host) else { return lost() }
        flow.towardsClient.shape = shape
        guard case .at(let deadline) = flow.towardsClient.schedule(bytes: buffer.readableBytes, now: DelayedForwarder.now, reliable: false)
        else { return lost() }
        let envelope = AddressedEnvelope(remoteAddress: client, data: buffer)
        listener.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
            listener.writeAndFlush(envelope, promise: nil)
        }
    }

    private func lost() {
        fabric.tally.withLock { $0.datagramsLost += 1 }
    }

    private func sweep(idle: TimeAmount) {
        let cutoff = NIODeadline.now() - idle
        for (client, flow) in flows where flow.lastActive < cutoff {
            flow.outbound?.close(promise: nil)
            flows[client] = nil
        }
    }
}

/// Hands each datagram a target sends back to the flow it belongs to.
final class FabricReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let onReply: (ByteBuffer) -> Void

    init(onReply: @escaping (ByteBuffer) -> Void) {
        self.onReply = onReply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onReply(unwrapInboundIn(data).data)
    }
}
