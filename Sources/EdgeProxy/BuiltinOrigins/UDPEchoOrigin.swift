import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// A UDP origin that echoes every datagram. With Simple Proxy Protocol it reads the header on
/// every datagram, records the client it names and puts the same header on the reply; with
/// PROXY v2 it reads a header on the first datagram from each peer.
public final class UDPEchoOrigin: Sendable {
    public struct Seen: Sendable, Hashable {
        public var peer: Endpoint
        public var client: Endpoint?
        public var payload: [UInt8]
    }

    private let expect: ProxyProtocolMode
    private let seen = Recorder<Seen>()
    private let channel = Mutex<(any Channel)?>(nil)
    private let group: any EventLoopGroup

    public init(expecting proxyProtocol: ProxyProtocolMode = .off, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        expect = proxyProtocol
        self.group = group
    }

    /// Datagrams received, with the client address their header named.
    public var datagrams: [Seen] { seen.all }

    public func start(at endpoint: Endpoint) async throws -> Endpoint {
        let bound = try await group.onLoop { [expect, seen] loop in
            DatagramBootstrap(group: loop)
                .channelInitializer { [expect, seen] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPEchoHandler(expect: expect, seen: seen))
                    }
                }
                .bind(to: endpoint.socketAddress)
        }.get()
        channel.withLock { $0 = bound }
        return bound.localAddress.flatMap(Endpoint.init) ?? endpoint
    }

    public func stop() async {
        let open = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await open?.close()
    }
}

final class UDPEchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let expect: ProxyProtocolMode
    private let seen: Recorder<UDPEchoOrigin.Seen>
    private var peersWithHeader: Set<Endpoint> = []

    init(expect: ProxyProtocolMode, seen: Recorder<UDPEchoOrigin.Seen>) {
        self.expect = expect
        self.seen = seen
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let peer = Endpoint(envelope.remoteAddress) else { return }
        var payload = envelope.data
        var client: Endpoint?
        var reply = context.channel.allocator.buffer(capacity: payload.readableBytes + SimpleProxyProtocol.length)
        switch expect {
        case .simple:
            guard let header = try? payload.readSimpleProxyHeader() else { return }
            client = header.client
            reply.writeSimpleProxyHeader(header)
        case .v2 where !peersWithHeader.contains(peer):
            guard let header = try? payload.readProxyV2() else { return }
            peersWithHeader.insert(peer)
            client = header.source
        default:
            break
        }
        seen.append(UDPEchoOrigin.Seen(peer: peer, client: client, payload: Array(payload.readableBytesView)))
        reply.writeImmutableBuffer(payload)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
    }
}
