import NIOCore

/// Reads a pod tunnel's datagrams from its UDP socket and hands each to the tunnel.
final class PodTunnelSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let tunnel: PodTunnel

    init(tunnel: PodTunnel) {
        self.tunnel = tunnel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An ICMP error for an earlier datagram (the peer not yet listening) loses that one only.
        tunnel.tally.withLock { $0.dropped += 1 }
    }
}
