import EdgeDNS
import EdgeModel
import EdgeProxy
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A clock the test moves by hand, so TTL expiry needs no waiting.
final class ManualClock: Sendable {
    private let current = Mutex(NIODeadline.now())
    var now: NIODeadline { current.withLock { $0 } }
    func advance(by amount: TimeAmount) { current.withLock { $0 = $0 + amount } }
}

@Suite struct OriginDNSTests {
    static let zoneApex = DNSName("origins.test")!

    func dnsApp(_ id: String, edgePort: UInt16, origin: OriginDNS) -> Application {
        Application(
            id: id, edge: EdgeListener(transport: .tcp, ports: PortRange(port: edgePort)),
            dns: PublicName(type: .cname, name: "\(id).test.example"),
            origin: .dns(origin))
    }

    func zone(_ records: [DNSRecord]) -> ZoneStore {
        var zone = Zone(apex: Self.zoneApex, nameServers: [DNSName("ns.origins.test")!])
        for record in records { zone.add(record) }
        return ZoneStore([zone])
    }

    @Test func reResolvesAfterTheTTLAndLeavesLiveConnectionsAlone() async throws {
        let port: UInt16 = 9300
        let first = TCPOrigin()
        let firstAddress = Loopback.address()
        try await first.start(address: firstAddress, ports: [port])
        let second = TCPOrigin()
        let secondAddress = Loopback.address()
        try await second.start(address: secondAddress, ports: [port])
        let name = DNSName("svc.origins.test")!
        let zones = zone([DNSRecord(name: name, ttl: 60, data: .a(firstAddress))])
        let dns = DNSServer(zones: zones)
        let dnsEndpoint = try await dns.start(at: Endpoint(Loopback.address(), 0))
        let clock = ManualClock()
        let resolver = DNSOriginResolver(client: DNSClient(server: dnsEndpoint), now: { clock.now })
        let edge = Loopback.address()
        let app = dnsApp("dns-origin", edgePort: 25, origin: OriginDNS(name: "svc.origins.test", type: .a, ports: PortRange(port: port)))
        let node = EdgeNode(applications: [app], listen: [edge], resolver: resolver)
        _ = try await node.start()

        // A long-lived connection, opened while the name points at the first origin.
        let live = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: Endpoint(edge, 25).socketAddress) {
            channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await live.executeThenClose { inbound, outbound in
            var replies = inbound.makeAsyncIterator()
            try await outbound.write(ByteBuffer(string: "before"))
            #expect(try await replies.next() == ByteBuffer(string: "before"))

            zones.update(Self.zoneApex) { zone in
                zone.remove(name)
                zone.add(DNSRecord(name: name, ttl: 60, data: .a(secondAddress)))
            }
            let cached = try await TCPTestClient.exchange(with: Endpoint(edge, 25), sending: Array("cached".utf8))
            #expect(cached.received == Array("cached".utf8))
            #expect(second.connections.isEmpty, "within the TTL the cached answer is used")

            clock.advance(by: .seconds(61))
            let fresh = try await TCPTestClient.exchange(with: Endpoint(edge, 25), sending: Array("fresh".utf8))
            #expect(fresh.received == Array("fresh".utf8))
            #expect(second.connections.count == 1, "after the TTL the new address is used")

            try await outbound.write(ByteBuffer(string: "after"))
            #expect(try await replies.next() == ByteBuffer(string: "after"), "the live connection was not disturbed")
        }
        #expect(first.connections.count == 2)
        #expect(resolver.lookupCount == 2)
        await node.stop()
        await dns.stop()
        await first.stop()
        await second.stop()
    }

    @Test func srvRecordsGiveThePort() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let target = DNSName("host.origins.test")!
        let zones = zone([
            DNSRecord(
                name: DNSName("_echo._tcp.origins.test")!, ttl: 30,
                data: .srv(priority: 10, weight: 1, port: originEndpoint.port, target: target)),
            DNSRecord(name: target, ttl: 30, data: .a(originEndpoint.address)),
        ])
        let dns = DNSServer(zones: zones)
        let dnsEndpoint = try await dns.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let app = dnsApp("srv-origin", edgePort: 7, origin: OriginDNS(name: "_echo._tcp.origins.test", type: .srv, ports: nil))
        let node = EdgeNode(applications: [app], listen: [edge], resolver: DNSOriginResolver(client: DNSClient(server: dnsEndpoint)))
        _ = try await node.start()
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: Array("srv".utf8))
        #expect(result.received == Array("srv".utf8))
        #expect(origin.connections.count == 1)
        await node.stop()
        await dns.stop()
        await origin.stop()
    }

    @Test func aNameThatDoesNotResolveClosesTheClient() async throws {
        let dns = DNSServer(zones: zone([]))
        let dnsEndpoint = try await dns.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let app = dnsApp("missing", edgePort: 7, origin: OriginDNS(name: "gone.origins.test", ports: PortRange(port: 7)))
        let node = EdgeNode(applications: [app], listen: [edge], resolver: DNSOriginResolver(client: DNSClient(server: dnsEndpoint)))
        _ = try await node.start()
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: Array("x".utf8))
        #expect(result.received.isEmpty)
        let event = await node.events.first { $0.event == .resolveOrigin }
        #expect(event?.status == 530)
        await node.stop()
        await dns.stop()
    }
}
