import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// A topology link between two namespaces as a pair of TUN devices: every IP packet one side
/// sends is read here and written into the other side when the link's schedule says it
/// arrives (latency, jitter, loss, bandwidth; each direction on its own). Works for any
/// protocol, since it carries packets, not connections.
public final class TunLink: Sendable {
    public struct Counters: Sendable, Hashable {
        public var forwarded = 0
        public var lost = 0
    }

    public let a: String
    public let b: String
    public let device: String
    let state: Mutex<(shape: LinkShape, cut: Bool)>
    let tally = Mutex(Counters())
    private let channels = Mutex<[any Channel]>([])

    private init(a: String, b: String, device: String, shape: LinkShape, descriptors: (Int32, Int32)) {
        self.a = a
        self.b = b
        self.device = device
        state = Mutex((shape, false))
        self.descriptors = Mutex(descriptors)
    }

    private let descriptors: Mutex<(Int32, Int32)?>

    /// Makes the device `device` in both namespaces. Nothing is carried until `start`, which
    /// must come after both devices are up: a TUN device that is down fails writes, and a
    /// failed write would close it.
    public static func create(
        between a: (host: String, namespace: NetworkNamespace), _ b: (host: String, namespace: NetworkNamespace), device: String,
        shape: LinkShape
    ) throws -> TunLink {
        let fdA = try a.namespace.openTUN(named: device)
        let fdB: Int32
        do {
            fdB = try b.namespace.openTUN(named: device)
        } catch {
            _ = Glibc.close(fdA)
            throw error
        }
        return TunLink(a: a.host, b: b.host, device: device, shape: shape, descriptors: (fdA, fdB))
    }

    /// Starts carrying packets, both directions on one event loop (so neither reorders).
    public func start(on loop: any EventLoop) async throws {
        guard let (fdA, fdB) = descriptors.withLock({ $0.take() }) else { return }
        let sideA = try await Self.pipe(fdA, link: self, on: loop)
        let sideB: any Channel
        do {
            sideB = try await Self.pipe(fdB, link: self, on: loop)
        } catch {
            _ = Glibc.close(fdB)
            try? await sideA.close()
            throw error
        }
        channels.withLock { $0 = [sideA, sideB] }
        try await loop.submit {
            try sideA.pipeline.syncOperations.handler(type: PacketForwarder.self).peer = sideB
            try sideB.pipeline.syncOperations.handler(type: PacketForwarder.self).peer = sideA
        }.get()
    }

    private static func pipe(_ fd: Int32, link: TunLink, on loop: any EventLoop) async throws -> any Channel {
        try await NIOPipeBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(PacketForwarder(link: link)) }
            }
            .takingOwnershipOfDescriptor(inputOutput: fd).get()
    }

    public var shape: LinkShape { state.withLock { $0.shape } }
    public var isCut: Bool { state.withLock { $0.cut } }
    public var counters: Counters { tally.withLock { $0 } }

    public func set(_ shape: LinkShape) { state.withLock { $0.shape = shape } }

    /// Drops everything on the link until `restore`.
    public func cut() { state.withLock { $0.cut = true } }

    public func restore(_ shape: LinkShape) { state.withLock { $0 = (shape, false) } }

    /// Closes both devices (they disappear with their descriptors).
    public func close() async {
        if let (fdA, fdB) = descriptors.withLock({ $0.take() }) {
            _ = Glibc.close(fdA)
            _ = Glibc.close(fdB)
        }
        for channel in channels.withLock({ $0 }) { try? await channel.close() }
    }
}

/// Reads packets from one side's TUN and writes each to the other side at its arrival time.
final class PacketForwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let link: TunLink
    private var schedule = LinkSchedule(shape: LinkShape())
    var peer: (any Channel)?

    init(link: TunLink) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        let (shape, cut) = link.state.withLock { $0 }
        guard let peer, !cut else { return lose() }
        schedule.shape = shape
        let now = NIODeadline.now().uptimeNanoseconds
        guard case .at(let deadline) = schedule.schedule(bytes: packet.readableBytes, now: now, reliable: false) else { return lose() }
        link.tally.withLock { $0.forwarded += 1 }
        if deadline <= now {
            peer.writeAndFlush(packet, promise: nil)
        } else {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
                // One packet per write: a TUN device takes each write as one packet.
                peer.writeAndFlush(packet, promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A packet the other side's kernel refused (e.g. while the device is still down) is lost.
        lose()
    }

    private func lose() {
        link.tally.withLock { $0.lost += 1 }
    }
}
