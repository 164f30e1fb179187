import EdgeModel
import NIOCore

/// One client's UDP flow through an edge listener: its own connected socket towards the origin,
/// what it carried, and its `UDPFlowStateMachine`. Used only on the listener's event loop.
final class UDPFlow {
    let client: Endpoint
    let edge: Endpoint
    var origin: Endpoint?
    /// Edge nodes the flow goes through to its origin (smart routing); empty for direct.
    var via: [String] = []
    var originChannel: (any Channel)?
    /// Datagrams that arrived while the origin socket was opening.
    var pending: [ByteBuffer] = []
    var headerSent = false
    let started = NIODeadline.now()
    var lastActivity = NIODeadline.now()
    var firstReply: NIODeadline?
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// What happens next is decided here; the listener carries it out.
    var machine: UDPFlowStateMachine

    init(client: Endpoint, edge: Endpoint, pendingLimit: Int) {
        self.client = client
        self.edge = edge
        machine = UDPFlowStateMachine(pendingLimit: pendingLimit)
    }

    /// The bytes to send for one client payload: SPP on every datagram, PROXY v2 on the first.
    func frame(_ payload: ByteBuffer, mode: ProxyProtocolMode, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch mode {
        case .simple:
            var buffer = allocator.buffer(capacity: SimpleProxyProtocol.length + payload.readableBytes)
            buffer.writeSimpleProxyHeader(SimpleProxyHeader(client: client, proxy: edge))
            buffer.writeImmutableBuffer(payload)
            return buffer
        case .v2 where !headerSent:
            headerSent = true
            var buffer = allocator.buffer(capacity: 52 + payload.readableBytes)
            buffer.writeProxyV2(ProxyHeader.proxied(transport: .datagram, source: client, destination: edge))
            buffer.writeImmutableBuffer(payload)
            return buffer
        default:
            return payload
        }
    }
}
