import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Two real namespaces joined by a TUN link: what crosses it takes the link's latency, a cut
/// link carries nothing, and every namespace and device is gone afterwards.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: network namespaces and TUN devices (CI runs as root)"))
struct TunLinkTests {
    struct Pair {
        var a: NetworkNamespace
        var b: NetworkNamespace
        var link: TunLink
        var groupA: MultiThreadedEventLoopGroup
        var groupB: MultiThreadedEventLoopGroup
    }

    static let addressA = IPAddress("198.18.250.1")!
    static let addressB = IPAddress("198.18.250.2")!

    func withPair(latency: Duration, _ body: (Pair) async throws -> Void) async throws {
        let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let a = NetworkNamespace("\(tag)-a")
        let b = NetworkNamespace("\(tag)-b")
        try NetworkNamespace.create([a, b])
        defer { NetworkNamespace.delete([a, b]) }
        let link = try TunLink.create(between: ("a", a), ("b", b), device: "l0", shape: LinkShape(latency: latency))
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
        try await link.start(on: MultiThreadedEventLoopGroup.singleton.next())
        let groupA = try a.eventLoopGroup()
        let groupB = try b.eventLoopGroup()
        do {
            try await body(Pair(a: a, b: b, link: link, groupA: groupA, groupB: groupB))
        } catch {
            await link.close()
            try? await groupA.shutdownGracefully()
            try? await groupB.shutdownGracefully()
            throw error
        }
        await link.close()
        try await groupA.shutdownGracefully()
        try await groupB.shutdownGracefully()
    }

    /// Connects from inside namespace a (the socket is made on a's thread).
    func connect(_ pair: Pair, timeout: TimeAmount) async throws -> any Channel {
        try await pair.groupA.onLoop { loop in
            ClientBootstrap(group: loop).connectTimeout(timeout).connect(to: Endpoint(Self.addressB, 7).socketAddress)
        }.get()
    }

    @Test func aConnectionAcrossTheLinkTakesItsRoundTrip() async throws {
        try await withPair(latency: .milliseconds(20)) { pair in
            let origin = TCPOrigin(group: pair.groupB)
            try await origin.start(address: Self.addressB, ports: [7])
            var times: [Double] = []
            for _ in 0..<5 {
                let started = ContinuousClock.now
                let channel = try await connect(pair, timeout: .seconds(3))
                times.append((ContinuousClock.now - started).seconds * 1000)
                try await channel.close()
            }
            // The origin accepts when the handshake's last ACK arrives, a link crossing after the client is done.
            #expect(await eventually { origin.connections.count == 5 })
            await origin.stop()
            // A handshake is one round trip: 2 x 20 ms, plus scheduling on this machine.
            let median = times.sorted()[2]
            #expect(median >= 40 && median < 55, "connect times \(times) ms")
            #expect(pair.link.counters.forwarded >= 10)
            #expect(origin.connections.allSatisfy { $0.peer.address == Self.addressA })
        }
    }

    @Test func aCutLinkCarriesNothingUntilRestored() async throws {
        try await withPair(latency: .milliseconds(1)) { pair in
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

    @Test func namespacesAreGoneAfterwards() async throws {
        var names: [String] = []
        try await withPair(latency: .zero) { pair in
            names = [pair.a.name, pair.b.name]
            #expect(Set(NetworkNamespace.list()).isSuperset(of: names))
        }
        #expect(Set(NetworkNamespace.list()).isDisjoint(with: names))
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
