import CEdgeNet
import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// A topology link between two namespaces: every IP packet one side sends is read here and
/// written into the other side when the link's schedule says it arrives (latency, jitter, loss,
/// bandwidth; each direction on its own). Works for any protocol, since it carries packets, not
/// connections. Each side is a TUN device, or, where TUN devices cannot be opened, a veth pair
/// whose outer end is read and written through a packet socket (`LinkDevice`).
public final class EmulatedLink: Sendable {
    public struct Counters: Sendable, Hashable {
        public var forwarded = 0
        public var lost = 0
    }

    public let a: String
    public let b: String
    public let device: String
    public let kind: LinkDevice
    /// The veth pairs, deleted on close; none for TUN.
    private let veth: VethEnds?
    let state: Mutex<(shape: LinkShape, cut: Bool)>
    let tally = Mutex(Counters())
    private let channels = Mutex<[any Channel]>([])

    private init(
        a: String, b: String, device: String, kind: LinkDevice, veth: VethEnds? = nil, shape: LinkShape, descriptors: (Int32, Int32)
    ) {
        self.a = a
        self.b = b
        self.device = device
        self.kind = kind
        self.veth = veth
        state = Mutex((shape, false))
        self.descriptors = Mutex(descriptors)
    }

    private let descriptors: Mutex<(Int32, Int32)?>
    /// The devices' own descriptors while SwiftNIO carries packets on copies of them (`dup`):
    /// its channels can then be closed first, and the devices deleted after, with no poll event
    /// from a vanishing device reaching a channel that still watches it.
    private let kept = Mutex<(Int32, Int32)?>(nil)

    /// Makes the device `device` in both namespaces. Nothing is carried until `start`, which
    /// must come after both devices are up: a device that is down fails writes, and a failed
    /// write would close it.
    public static func create(
        _ kind: LinkDevice, between a: (host: String, namespace: NetworkNamespace), _ b: (host: String, namespace: NetworkNamespace),
        device: String, index: Int, shape: LinkShape
    ) throws -> EmulatedLink {
        switch kind {
        case .tun:
            let fdA = try a.namespace.openTUN(named: device)
            let fdB: Int32
            do {
                fdB = try b.namespace.openTUN(named: device)
            } catch {
                _ = Glibc.close(fdA)
                throw error
            }
            return EmulatedLink(a: a.host, b: b.host, device: device, kind: kind, shape: shape, descriptors: (fdA, fdB))
        case .veth:
            let outer = VethEnds(index: index, device: device)
            try outer.create(a.namespace, b.namespace)
            do {
                let descriptors = try outer.open()
                return EmulatedLink(
                    a: a.host, b: b.host, device: device, kind: kind, veth: outer, shape: shape, descriptors: descriptors)
            } catch {
                outer.delete()
                throw error
            }
        }
    }

    /// Starts carrying packets, both directions on one event loop (so neither reorders).
    public func start(on loop: any EventLoop) async throws {
        guard let (fdA, fdB) = descriptors.withLock({ $0.take() }) else { return }
        kept.withLock { $0 = (fdA, fdB) }
        let copyA = dup(fdA)
        guard copyA >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
        let sideA: any Channel
        do {
            sideA = try await Self.pipe(copyA, link: self, on: loop)
        } catch {
            _ = Glibc.close(copyA)
            throw error
        }
        let copyB = dup(fdB)
        let sideB: any Channel
        do {
            guard copyB >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
            sideB = try await Self.pipe(copyB, link: self, on: loop)
        } catch {
            if copyB >= 0 { _ = Glibc.close(copyB) }
            try? await sideA.close()
            throw error
        }
        channels.withLock { $0 = [sideA, sideB] }
        try await loop.submit {
            try sideA.pipeline.syncOperations.handler(type: LinkForwarder.self).peer = sideB
            try sideB.pipeline.syncOperations.handler(type: LinkForwarder.self).peer = sideA
        }.get()
    }

    private static func pipe(_ fd: Int32, link: EmulatedLink, on loop: any EventLoop) async throws -> any Channel {
        try await NIOPipeBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(LinkForwarder(link: link)) }
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

    /// Stops carrying packets: the channels close (and leave their event loop's epoll set), the
    /// devices stay until `close`.
    public func stopCarrying() async {
        for channel in channels.withLock({ channels in
            defer { channels.removeAll() }
            return channels
        }) { try? await channel.close() }
    }

    /// Closes both sides: TUN devices disappear with their descriptors, veth pairs are deleted.
    public func close() async {
        await stopCarrying()
        for pair in [descriptors.withLock({ $0.take() }), kept.withLock({ $0.take() })] {
            guard let (fdA, fdB) = pair else { continue }
            _ = Glibc.close(fdA)
            _ = Glibc.close(fdB)
        }
        veth?.delete()
    }
}
