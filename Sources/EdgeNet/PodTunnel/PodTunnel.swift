import NIOCore
import NIOPosix
import Synchronization

/// Carries packets between TUN devices in this pod's namespaces and their other ends in another
/// pod, over one UDP socket of the pod's own network: each device is one tunnel, named by an id
/// both ends agree on. Datagrams are taken only from the address given as a tunnel's peer.
public final class PodTunnel: Sendable {
    public struct Counters: Sendable, Hashable {
        /// Packets read from a device and sent to the peer.
        public var sent = 0
        /// Packets from the peer written into a device.
        public var received = 0
        /// Datagrams not taken: not a frame, an unknown tunnel, or a stranger's.
        public var dropped = 0
        /// Packets a device gave before its tunnel had a peer (the kernel's own, as a device comes up).
        public var beforePeer = 0
    }

    struct End {
        var channel: (any Channel)?
        var descriptor: Int32
        var peer: SocketAddress?
    }

    let loop: any EventLoop
    private let socket = Mutex<(any Channel)?>(nil)
    let ends = Mutex<[UInt32: End]>([:])
    let tally = Mutex(Counters())

    /// Every channel of the tunnel runs on `loop`; its UDP socket is made in the namespace of the
    /// loop's thread.
    public init(loop: any EventLoop) {
        self.loop = loop
    }

    public var counters: Counters { tally.withLock { $0 } }

    /// Opens the UDP socket on `address` (port 0: any) and returns the port it got.
    public func bind(host: String, port: Int = 0) async throws -> Int {
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PodTunnelSocketHandler(tunnel: self))
                }
            }
            .bind(host: host, port: port).get()
        socket.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    /// Carries the TUN device `descriptor` (taken over: closed by `close`) as tunnel `id`; its
    /// packets go to `peer` once one is known.
    public func attach(id: UInt32, descriptor: Int32, peer: SocketAddress? = nil) async throws {
        ends.withLock { $0[id] = End(channel: nil, descriptor: descriptor, peer: peer) }
        // SwiftNIO gets a copy, so its channel can close before the device goes (as EmulatedLink).
        let copy = dup(descriptor)
        guard copy >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
        let channel: any Channel
        do {
            channel = try await NIOPipeBootstrap(group: loop)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(PodTunnelDeviceHandler(tunnel: self, id: id))
                    }
                }
                .takingOwnershipOfDescriptor(inputOutput: copy).get()
        } catch {
            _ = Glibc.close(copy)
            throw error
        }
        ends.withLock { $0[id]?.channel = channel }
    }

    /// Where the tunnels' packets go (and may come from) from now on.
    public func setPeer(_ peer: SocketAddress, for ids: [UInt32]) {
        ends.withLock { ends in
            for id in ids { ends[id]?.peer = peer }
        }
    }

    /// A packet a device gave: framed and sent to its tunnel's peer.
    func send(_ packet: ByteBuffer, id: UInt32) {
        guard let peer = ends.withLock({ $0[id]?.peer }), let socket = socket.withLock({ $0 }) else {
            tally.withLock { $0.beforePeer += 1 }
            return
        }
        var frame = socket.allocator.buffer(capacity: PodTunnelFrame.headerSize + packet.readableBytes)
        PodTunnelFrame.write(id: id, packet: packet, into: &frame)
        socket.writeAndFlush(AddressedEnvelope(remoteAddress: peer, data: frame), promise: nil)
        tally.withLock { $0.sent += 1 }
    }

    /// A datagram from the pod network: written into its tunnel's device if it came from that
    /// tunnel's peer.
    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        var datagram = envelope.data
        guard let (id, packet) = PodTunnelFrame.read(&datagram),
            let end = ends.withLock({ $0[id] }), let channel = end.channel, let peer = end.peer,
            peer.ipAddress == envelope.remoteAddress.ipAddress, peer.port == envelope.remoteAddress.port
        else {
            tally.withLock { $0.dropped += 1 }
            return
        }
        // One packet per write: a TUN device takes each write as one packet.
        channel.writeAndFlush(packet, promise: nil)
        tally.withLock { $0.received += 1 }
    }

    /// Stops carrying: the socket and every device's channel close; the devices stay until
    /// `close`. Deleting the devices in between (a group at a time) is quicker than closing their
    /// descriptors, which waits for the kernel once per device.
    public func stopCarrying() async {
        try? await socket.withLock({ channel in
            defer { channel = nil }
            return channel
        })?.close()
        for channel in ends.withLock({ $0.values.compactMap(\.channel) }) { try? await channel.close() }
    }

    /// Stops carrying and closes every device.
    public func close() async {
        await stopCarrying()
        let all = ends.withLock { ends in
            defer { ends.removeAll() }
            return Array(ends.values)
        }
        for end in all { _ = Glibc.close(end.descriptor) }
    }
}
