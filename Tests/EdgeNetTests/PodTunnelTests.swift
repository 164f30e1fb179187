import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The frame a packet crosses between pods in: what is written reads back, and a datagram that
/// is not one is refused whole.
@Suite struct PodTunnelFrameTests {
    @Test func aFrameReadsBackAsItsTunnelAndPacket() throws {
        let packet = ByteBuffer(bytes: [0x45, 0, 0, 20, 1, 2, 3, 4])
        var frame = ByteBuffer()
        PodTunnelFrame.write(id: 0x0102_0304, packet: packet, into: &frame)
        #expect(frame.readableBytes == PodTunnelFrame.headerSize + packet.readableBytes)
        let (id, read) = try #require(PodTunnelFrame.read(&frame))
        #expect(id == 0x0102_0304)
        #expect(read == packet)
        #expect(frame.readableBytes == 0)
    }

    @Test(arguments: [
        [UInt8](),
        [0x45, 0x53, 0x50],
        [0x45, 0x53, 0x50, 0x54, 0, 0, 0, 1],
        [0x45, 0x53, 0x50, 0x55, 0, 0, 0, 1, 0x45],
        Array("GET / HTTP/1.1\r\n".utf8),
    ])
    func whatIsNotAFrameIsRefusedAndLeftUnread(_ bytes: [UInt8]) {
        var datagram = ByteBuffer(bytes: bytes)
        #expect(PodTunnelFrame.read(&datagram) == nil)
        #expect(datagram.readableBytes == bytes.count)
    }
}

/// Two namespaces, each with a TUN device carried by a tunnel of its own over loopback, as a
/// node's namespace in a node-host pod and its namespace in the runner's pod are: a TCP
/// connection crosses whole, and datagrams from anyone but the peer are not let in.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: network namespaces and TUN devices (CI runs as root)"))
struct PodTunnelTests {
    static let addressA = IPAddress("198.18.251.1")!
    static let addressB = IPAddress("198.18.251.2")!

    func eventually(within limit: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func aMegabyteCrossesTheTunnelAndStrangersAreRefused() async throws {
        let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let a = NetworkNamespace("\(tag)-a")
        let b = NetworkNamespace("\(tag)-b")
        try NetworkNamespace.create([a, b])
        defer { NetworkNamespace.delete([a, b]) }
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tunnelA = PodTunnel(loop: loop.next())
        let tunnelB = PodTunnel(loop: loop.next())
        let portA = try await tunnelA.bind(host: "127.0.0.1")
        let portB = try await tunnelB.bind(host: "127.0.0.1")
        let deviceA = try a.openTUN(named: "pod0")
        let deviceB = try b.openTUN(named: "pod0")
        // Both devices up before anything is carried: a write into a device that is down fails.
        for (namespace, own, other) in [(a, Self.addressA, Self.addressB), (b, Self.addressB, Self.addressA)] {
            try IPCommand.batch(
                ["link set lo up", "addr add \(own)/32 dev lo", "link set pod0 mtu 1400 up", "route add \(other)/32 dev pod0 src \(own)"],
                namespace: namespace.name)
        }
        try await tunnelA.attach(id: 7, descriptor: deviceA, peer: SocketAddress(ipAddress: "127.0.0.1", port: portB))
        try await tunnelB.attach(id: 7, descriptor: deviceB)
        // The other end learns its peer later, as a runner does from a node host's hello.
        tunnelB.setPeer(try SocketAddress(ipAddress: "127.0.0.1", port: portA), for: [7])
        let groupA = try a.eventLoopGroup()
        let groupB = try b.eventLoopGroup()
        let origin = TCPOrigin(group: groupB)
        do {
            try await origin.start(address: Self.addressB, ports: [7])
            let (sent, echoed) = try await ByteCounter.echoMegabyte(from: groupA, to: Endpoint(Self.addressB, 7))
            #expect(echoed == sent)
            #expect(origin.connections.first?.peer.address == Self.addressA)
            #expect(tunnelA.counters.sent > 700 && tunnelB.counters.received > 700, "\(tunnelA.counters) \(tunnelB.counters)")

            // A well-formed frame for tunnel 7 from a socket that is not A's.
            let stranger = try await DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).get()
            var frame = ByteBuffer()
            PodTunnelFrame.write(
                id: 7, packet: ByteBuffer(bytes: [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0] + [198, 18, 251, 1, 198, 18, 251, 2]),
                into: &frame)
            let dropped = tunnelB.counters.dropped
            try await stranger.writeAndFlush(
                AddressedEnvelope(remoteAddress: SocketAddress(ipAddress: "127.0.0.1", port: portB), data: frame))
            #expect(await eventually { tunnelB.counters.dropped == dropped + 1 })
            try await stranger.close()
        } catch {
            Issue.record(error, "\(tunnelA.counters) \(tunnelB.counters)")
        }
        await origin.stop()
        await tunnelA.close()
        await tunnelB.close()
        try await groupA.shutdownGracefully()
        try await groupB.shutdownGracefully()
        try await loop.shutdownGracefully()
    }
}
