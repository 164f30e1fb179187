import NIOCore

/// Reads packets from one TUN device of a pod tunnel and hands each to the tunnel.
final class PodTunnelDeviceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let tunnel: PodTunnel
    private let id: UInt32

    init(tunnel: PodTunnel, id: UInt32) {
        self.tunnel = tunnel
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.send(unwrapInboundIn(data), id: id)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A packet the device refused (the namespace going away) is lost, not the tunnel.
        tunnel.tally.withLock { $0.dropped += 1 }
    }
}
