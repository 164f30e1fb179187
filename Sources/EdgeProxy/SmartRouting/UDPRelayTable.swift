import EdgeModel
import NIOCore
import NIOPosix

/// The smart-routed UDP flows a relay edge carries for other edges, on its probe socket's event
/// loop: each sender (an entry edge's flow socket, or the previous relay's) gets a socket of its
/// own towards the origin or the next relay; what comes back goes to the sender as it is. The
/// bytes are framed for the origin (SPP, PROXY v2) by the entry edge, so the origin sees the
/// true client. Flows idle for the application's UDP idle timeout are closed.
final class UDPRelayTable {
    private final class Flow {
        var channel: (any Channel)?
        var pending: [ByteBuffer] = []
        var lastActivity = NIODeadline.now()
        var closed = false
        let idleTimeout: TimeAmount

        init(idleTimeout: TimeAmount) {
            self.idleTimeout = idleTimeout
        }
    }

    private let services: [String: ApplicationService]
    private let router: SmartRouter
    private var flows: [Endpoint: Flow] = [:]
    /// Most relayed flows at once; more are refused. Default 10,000.
    let maximumFlows: Int

    init(services: [String: ApplicationService], router: SmartRouter, maximumFlows: Int = 10_000) {
        self.services = services
        self.router = router
        self.maximumFlows = maximumFlows
    }

    func forward(_ datagram: RelayDatagram, from sender: Endpoint, on probeChannel: any Channel) {
        if let flow = flows[sender] {
            flow.lastActivity = .now()
            send(datagram, on: flow)
            return
        }
        guard router.configuration.peers.values.contains(sender.address.unmapped), let service = services[datagram.app],
            service.smartRouting != nil, service.app.edge.transport == .udp, service.permitsRelay(to: datagram.origin),
            flows.count < maximumFlows
        else {
            router.count { $0.relayRefused += 1 }
            return
        }
        router.count { $0.relayedIn += 1 }
        let flow = Flow(idleTimeout: service.configuration.udpIdleTimeout)
        flows[sender] = flow
        send(datagram, on: flow)
        let loop = probeChannel.eventLoop
        let boundFlow = NIOLoopBound(flow, eventLoop: loop)
        let next: Endpoint
        var bootstrap = DatagramBootstrap(group: loop)
        let onward = Array(datagram.via.dropFirst())
        if let relay = datagram.via.first {
            guard let address = router.configuration.peers[relay] else {
                flows[sender] = nil
                return
            }
            next = Endpoint(address, router.configuration.port)
        } else {
            next = datagram.origin
        }
        bootstrap = bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    RelayReplyHandler { reply in
                        boundFlow.value.lastActivity = .now()
                        probeChannel.writeAndFlush(AddressedEnvelope(remoteAddress: sender.socketAddress, data: reply), promise: nil)
                    })
                if !datagram.via.isEmpty {
                    try channel.pipeline.syncOperations.addHandler(
                        RelayDatagramFramer(app: datagram.app, origin: datagram.origin, via: onward))
                }
            }
        }
        let opened: EventLoopFuture<any Channel> =
            datagram.via.isEmpty
            ? bootstrap.connect(to: next.socketAddress)
            : bootstrap.bind(to: Endpoint(router.configuration.address, 0).socketAddress).flatMap { channel in
                channel.connect(to: next.socketAddress).map { channel }
            }
        opened.whenComplete { result in
            let flow = boundFlow.value
            switch result {
            case .success(let channel):
                guard !flow.closed else { return channel.close(promise: nil) }
                flow.channel = channel
                for payload in flow.pending { channel.write(payload, promise: nil) }
                flow.pending.removeAll()
                channel.flush()
            case .failure:
                flow.closed = true
            }
        }
    }

    private func send(_ datagram: RelayDatagram, on flow: Flow) {
        if let channel = flow.channel {
            channel.writeAndFlush(datagram.payload, promise: nil)
        } else if flow.pending.count < 64 {
            flow.pending.append(datagram.payload)
        }
    }

    /// Closes flows idle for their application's timeout.
    func expireIdle() {
        let now = NIODeadline.now()
        for (sender, flow) in flows where flow.closed || now - flow.lastActivity > flow.idleTimeout {
            flow.closed = true
            flow.channel?.close(promise: nil)
            flows[sender] = nil
        }
    }

    func closeAll() {
        for flow in flows.values {
            flow.closed = true
            flow.channel?.close(promise: nil)
        }
        flows.removeAll()
    }
}

/// Hands every datagram a relayed flow's socket receives to the table, which sends it back.
final class RelayReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let onReply: (ByteBuffer) -> Void

    init(onReply: @escaping (ByteBuffer) -> Void) {
        self.onReply = onReply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onReply(unwrapInboundIn(data).data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An ICMP error on a connected socket; the flow lives on until it goes idle.
    }
}

/// Wraps every datagram a flow sends towards a relay edge in the relay header.
final class RelayDatagramFramer: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let app: String
    private let origin: Endpoint
    private let via: [String]

    init(app: String, origin: Endpoint, via: [String]) {
        self.app = app
        self.origin = origin
        self.via = via
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        var framed = context.channel.allocator.buffer(capacity: payload.readableBytes + 64)
        framed.writeProbeMessage(.relay(RelayDatagram(app: app, origin: origin, via: via, payload: payload)))
        context.write(wrapOutboundOut(framed), promise: promise)
    }
}
