import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Two real namespaces joined by a link of each kind (TUN devices; veth pairs through packet
/// sockets): what crosses it takes the link's latency, arrives whole, a cut link carries nothing,
/// and every namespace and device is gone afterwards.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: network namespaces and TUN devices (CI runs as root)"))
struct EmulatedLinkTests {
    struct Pair {
        var a: NetworkNamespace
        var b: NetworkNamespace
        var link: EmulatedLink
        var groupA: MultiThreadedEventLoopGroup
        var groupB: MultiThreadedEventLoopGroup
    }

    static let addressA = IPAddress("198.18.250.1")!
    static let addressB = IPAddress("198.18.250.2")!

    func withPair(_ kind: LinkDevice, latency: Duration, _ body: (Pair) async throws -> Void) async throws {
        let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let a = NetworkNamespace("\(tag)-a")
        let b = NetworkNamespace("\(tag)-b")
        try NetworkNamespace.create([a, b])
        defer { NetworkNamespace.delete([a, b]) }
        let link = try EmulatedLink.create(kind, between: ("a", a), ("b", b), device: "l0", index: 0, shape: LinkShape(latency: latency))
        try IPCommand.batch(
            [
                "link set lo up", "addr add \(Self.addressA)/32 dev lo", "link set l0 up",
                "route add \(Self.addressB)/32 dev l0 src \(Self.addressA)",
            ], namespace: a.name)
        try IPCommand.batch(
            [
                "link set lo up", "addr add \(Self.addressB)/32 dev lo", "link set l0 up",
                "route add \(Self.addressA)/32 dev l0 src \(Self.addressB)",
            ], namespace: b.name)
        // A loop of the link's own: on the shared singleton, packets would wait behind whatever
        // other tests running at the same time give it, and the latencies measured with them.
        let linkLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await link.start(on: linkLoop.next())
        let groupA = try a.eventLoopGroup()
        let groupB = try b.eventLoopGroup()
        do {
            try await body(Pair(a: a, b: b, link: link, groupA: groupA, groupB: groupB))
        } catch {
            await link.close()
            try? await groupA.shutdownGracefully()
            try? await groupB.shutdownGracefully()
            try? await linkLoop.shutdownGracefully()
            throw error
        }
        await link.close()
        try await groupA.shutdownGracefully()
        try await groupB.shutdownGracefully()
        try await linkLoop.shutdownGracefully()
    }

    /// Connects from inside namespace a (the socket is made on a's thread).
    func connect(_ pair: Pair, timeout: TimeAmount) async throws -> any Channel {
        try await pair.groupA.onLoop { loop in
            ClientBootstrap(group: loop).connectTimeout(timeout).connect(to: Endpoint(Self.addressB, 7).socketAddress)
        }.get()
    }

    @Test(arguments: [LinkDevice.tun, .veth])
    func aConnectionAcrossTheLinkTakesItsRoundTrip(_ kind: LinkDevice) async throws {
        try await withPair(kind, latency: .milliseconds(20)) { pair in
            let origin = TCPOrigin(group: pair.groupB)
            try await origin.start(address: Self.addressB, ports: [7])
            // A handshake is one round trip: every one takes 2 x 20 ms at least. A delay applied
            // twice would make every one 80 ms or more, so one quicker than that shows there is
            // no more. Other tests loading both cores can only add time, so connections go on
            // (at most 30) until one comes in under 80 ms.
            var times: [Double] = []
            while times.count < 30, times.allSatisfy({ $0 >= 80 }) {
                let started = ContinuousClock.now
                let channel = try await connect(pair, timeout: .seconds(3))
                times.append((ContinuousClock.now - started).seconds * 1000)
                try await channel.close()
            }
            // The origin accepts when the handshake's last ACK arrives, a link crossing after the client is done.
            let made = times.count
            #expect(await eventually { origin.connections.count == made })
            await origin.stop()
            #expect(times.allSatisfy { $0 >= 40 } && times.min()! < 80, "connect times \(times) ms")
            #expect(pair.link.counters.forwarded >= 2 * made)
            #expect(origin.connections.allSatisfy { $0.peer.address == Self.addressA })
        }
    }

    @Test(arguments: [LinkDevice.tun, .veth])
    func aCutLinkCarriesNothingUntilRestored(_ kind: LinkDevice) async throws {
        try await withPair(kind, latency: .milliseconds(1)) { pair in
            let origin = TCPOrigin(group: pair.groupB)
            try await origin.start(address: Self.addressB, ports: [7])
            pair.link.cut()
            await #expect(throws: (any Error).self) { try await connect(pair, timeout: .milliseconds(300)) }
            #expect(pair.link.counters.lost >= 1)
            pair.link.restore(LinkShape(latency: .milliseconds(1)))
            let channel = try await connect(pair, timeout: .seconds(3))
            try await channel.close()
            await origin.stop()
        }
    }

    /// Full-size segments arrive with good checksums (a veth's offloads would leave them unfinished).
    @Test(arguments: [LinkDevice.tun, .veth])
    func aMegabyteComesBackByteForByte(_ kind: LinkDevice) async throws {
        try await withPair(kind, latency: .milliseconds(1)) { pair in
            let origin = TCPOrigin(group: pair.groupB)
            try await origin.start(address: Self.addressB, ports: [7])
            let (sent, echoed) = try await ByteCounter.echoMegabyte(from: pair.groupA, to: Endpoint(Self.addressB, 7))
            await origin.stop()
            #expect(echoed == sent)
        }
    }

    @Test(arguments: [LinkDevice.tun, .veth])
    func namespacesAndDevicesAreGoneAfterwards(_ kind: LinkDevice) async throws {
        var names: [String] = []
        try await withPair(kind, latency: .zero) { pair in
            names = [pair.a.name, pair.b.name]
            #expect(Set(NetworkNamespace.list()).isSuperset(of: names))
            if kind == .veth {
                let links = try Self.linkNames()
                #expect(links.contains("e\(getpid())l0a"))
            }
        }
        #expect(Set(NetworkNamespace.list()).isDisjoint(with: names))
        let links = try Self.linkNames()
        #expect(!links.contains { $0.hasPrefix("e\(getpid())l") })
    }

    /// Interfaces of this process's own namespace.
    static func linkNames() throws -> [String] {
        try IPCommand.run(["-o", "link", "show"]).split(separator: "\n").compactMap { line in
            line.split(separator: ":").dropFirst().first.map { String($0.trimmingCharacters(in: .whitespaces).split(separator: "@")[0]) }
        }
    }

    /// Waits for a condition that another thread makes true, checking each millisecond, for at most `limit`.
    func eventually(within limit: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }
}

extension ByteCounter {
    /// Sends a megabyte to an echo at `target` from a socket made on `group` (in its namespace),
    /// and returns what was sent and what came back.
    static func echoMegabyte(from group: any EventLoopGroup, to target: Endpoint) async throws -> (sent: [UInt8], echoed: [UInt8]) {
        let sent = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let received = group.any().makePromise(of: [UInt8].self)
        let connecting = group.onLoop { loop in
            ClientBootstrap(group: loop).connectTimeout(.seconds(3))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteCounter(expecting: sent.count, done: received))
                    }
                }
                .connect(to: target.socketAddress)
        }
        let channel: any Channel
        do {
            channel = try await connecting.get()
        } catch {
            received.fail(error)
            throw error
        }
        // Not awaited: a write that never drains (nothing acknowledged) must not hold the test.
        channel.writeAndFlush(ByteBuffer(bytes: sent), promise: nil)
        let echoed = try await received.futureResult.get()
        try await channel.close()
        return (sent, echoed)
    }
}

/// Collects what comes back until `expecting` bytes have, then fulfils `done` with them; what
/// came by then when the connection closes or 10 s have passed.
final class ByteCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var bytes: [UInt8] = []
    private let expecting: Int
    private let done: EventLoopPromise<[UInt8]>
    private var finished = false

    init(expecting: Int, done: EventLoopPromise<[UInt8]>) {
        self.expecting = expecting
        self.done = done
    }

    func handlerAdded(context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { self.finish() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
        if bytes.count >= expecting { finish() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        done.succeed(bytes)
    }
}
