import EdgeDNS
import EdgeModel
import EdgeProxy
import EdgeSim
import Foundation
import NIOCore
import NIOPosix
import Testing

@Suite struct AddressPoolTests {
    @Test func allocatesUniquelyAndReusesReleased() throws {
        var pool = AddressPool(try IPPrefix.parse("198.19.0.0/30").get())
        let first = pool.allocate()
        let second = pool.allocate()
        let third = pool.allocate()
        #expect([first, second, third] == [IPAddress("198.19.0.1"), IPAddress("198.19.0.2"), IPAddress("198.19.0.3")])
        #expect(pool.allocate() == nil, "a /30 holds three usable addresses here")
        pool.release(IPAddress("198.19.0.2")!)
        #expect(pool.allocate() == IPAddress("198.19.0.2"))
        let takenAgain = pool.reserve(IPAddress("198.19.0.2")!)
        let outside = pool.reserve(IPAddress("198.20.0.1")!)
        #expect(!takenAgain && !outside)
    }

    @Test func bookFollowsConnectivity() throws {
        let book = AddressBook(ipv4: try IPPrefix.parse("198.19.0.0/24").get(), ipv6: try IPPrefix.parse("2001:db8:a::/64").get())
        func app(_ id: String, _ connectivity: EdgeIPs.Connectivity) -> Application {
            Application(
                id: id, edge: try! EdgeListener.parse("tcp/1").get(), dns: PublicName(type: .cname, name: "\(id).example"),
                origin: .direct([]), edgeIPs: .dynamic(connectivity))
        }
        let apps = [app("both", .all), app("four", .ipv4), app("six", .ipv6)]
        try book.assign(apps)
        #expect(book.addresses(of: apps[0]).map(\.isIPv4) == [true, false])
        #expect(book.addresses(of: apps[1]).map(\.isIPv4) == [true])
        #expect(book.addresses(of: apps[2]).map(\.isIPv4) == [false])
        let all = apps.flatMap { book.addresses(of: $0) }
        #expect(Set(all).count == all.count, "every application has its own addresses")
    }
}

@Suite struct RotationTests {
    static func loopbackPool() -> IPPrefix {
        IPPrefix(uncheckedAddress: .v4(0x7F00_0000 | UInt32.random(in: 0x10...0xFE) << 16 | UInt32.random(in: 0...255) << 8), length: 24)
    }

    @Test func makeBeforeBreakWithDrainAndLiveConnectionsKept() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: IPAddress("127.0.0.1")!)[0]
        let app = Application(
            id: "rotating", edge: EdgeListener(transport: .tcp, ports: PortRange(port: 7)),
            dns: PublicName(type: .cname, name: "rot.lab.example"),
            origin: .direct([OriginAddress(transport: .tcp, host: .ip(originEndpoint.address), ports: PortRange(port: originEndpoint.port))]
            ),
            edgeIPs: .dynamic(.ipv4))
        let pools = (ipv4: Self.loopbackPool(), ipv6: try IPPrefix.parse("2001:db8:a::/64").get())
        let book = AddressBook(ipv4: pools.ipv4, ipv6: pools.ipv6)
        let store = ZoneStore()
        let dns = DNSServer(zones: store)
        let dnsEndpoint = try await dns.start(at: Endpoint(IPAddress("127.0.0.1")!, 0))
        let client = DNSClient(server: dnsEndpoint)
        let node = EdgeNode(applications: [app], listen: [])
        let rotator = AddressRotator(
            applications: [app], book: book, zones: EdgeZones(pools: pools), store: store, servers: [node], drain: .milliseconds(300))
        try await rotator.start()

        func resolve() async throws -> (addresses: [IPAddress], serial: UInt32) {
            let answer = try await client.query(DNSName("rot.lab.example")!, .a)
            let addresses = answer.answers.compactMap { record -> IPAddress? in
                if case .a(let address) = record.data { return address } else { return nil }
            }
            let soa = try await client.query(DNSName("lab.example")!, .soa)
            guard case .soa(let data)? = soa.answers.first?.data else { return (addresses, 0) }
            return (addresses, data.serial)
        }
        let (before, serialBefore) = try await resolve()
        let old = try #require(before.first)
        #expect(pools.ipv4.contains(old))

        let live = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: Endpoint(old, 7).socketAddress) {
            channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await live.executeThenClose { inbound, outbound in
            var replies = inbound.makeAsyncIterator()
            try await outbound.write(ByteBuffer(string: "before"))
            #expect(try await replies.next() == ByteBuffer(string: "before"))

            // A drain long enough that a busy machine (the whole suite runs at once) still gets
            // both echoes in before the old address retires.
            let rotation = try await rotator.rotate("rotating", drain: .seconds(5))
            let (after, serialAfter) = try await resolve()
            let new = try #require(after.first)
            #expect(new != old)
            #expect(rotation.old == [old.description] && rotation.new == [new.description])
            #expect(rotation.servedAt <= rotation.publishedAt, "served before published")
            #expect(serialAfter == serialBefore + 1)

            // Both addresses accept while the old one drains.
            #expect(try await echo(at: Endpoint(new, 7)) == "new")
            #expect(try await echo(at: Endpoint(old, 7)) == "new", "clients with the old answer still get through")

            await rotator.waitForRetirements()
            #expect(rotator.rotations.first?.retiredAt != nil)
            await #expect(throws: (any Error).self) { _ = try await echo(at: Endpoint(old, 7)) }

            try await outbound.write(ByteBuffer(string: "after"))
            #expect(try await replies.next() == ByteBuffer(string: "after"), "the connection opened before the rotation survives")
        }
        await node.stop()
        await dns.stop()
        await origin.stop()
    }

    /// An application added, changed and removed while everything runs: each change is served on
    /// the node before DNS publishes it, a change moves to new addresses make-before-break (the old
    /// ones keep their old definition while they drain), and a removed one answers nowhere.
    @Test func applicationsAreAddedChangedAndRemovedWhileRunning() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: IPAddress("127.0.0.1")!)[0]
        func app(port: UInt16) -> Application {
            Application(
                id: "live", edge: EdgeListener(transport: .tcp, ports: PortRange(port: port)),
                dns: PublicName(type: .cname, name: "live.lab.example"),
                origin: .direct([
                    OriginAddress(transport: .tcp, host: .ip(originEndpoint.address), ports: PortRange(port: originEndpoint.port))
                ]),
                edgeIPs: .dynamic(.ipv4))
        }
        let pools = (ipv4: Self.loopbackPool(), ipv6: try IPPrefix.parse("2001:db8:a::/64").get())
        let book = AddressBook(ipv4: pools.ipv4, ipv6: pools.ipv6)
        let store = ZoneStore()
        let dns = DNSServer(zones: store)
        let client = DNSClient(server: try await dns.start(at: Endpoint(IPAddress("127.0.0.1")!, 0)))
        let node = EdgeNode(applications: [], listen: [])
        let rotator = AddressRotator(
            applications: [], book: book, zones: EdgeZones(pools: pools), store: store, servers: [node], drain: .milliseconds(300))
        try await rotator.start()
        func resolve() async throws -> (rcode: DNSResponseCode, addresses: [IPAddress]) {
            let answer = try await client.query(DNSName("live.lab.example")!, .a)
            return (
                answer.responseCode,
                answer.answers.compactMap { record -> IPAddress? in if case .a(let address) = record.data { address } else { nil } }
            )
        }

        #expect(node.define(app(port: 7)), "new to the node")
        try await rotator.add(app(port: 7))
        let first = try #require(try await resolve().addresses.first)
        #expect(try await echo(at: Endpoint(first, 7)) == "new")

        #expect(!node.define(app(port: 9)), "a change, not a new application")
        try await rotator.change(app(port: 9), drain: .seconds(5))
        let second = try #require(try await resolve().addresses.first)
        #expect(second != first)
        #expect(try await echo(at: Endpoint(second, 9)) == "new")
        #expect(try await echo(at: Endpoint(first, 7)) == "new", "the old address drains with the old definition")
        await #expect(throws: (any Error).self) { _ = try await echo(at: Endpoint(second, 7)) }
        await rotator.waitForRetirements()
        await #expect(throws: (any Error).self) { _ = try await echo(at: Endpoint(first, 7)) }

        await rotator.remove("live")
        #expect(await node.remove("live"))
        // Its zone held nothing else, so the zone went with it: the responder is no authority there now.
        #expect(try await resolve().rcode == .refused)
        await #expect(throws: (any Error).self) { _ = try await echo(at: Endpoint(second, 9)) }
        #expect(book.addresses(ofID: "live").isEmpty)
        #expect(!(await node.remove("live")), "already gone")
        #expect(node.services.isEmpty)
        await node.stop()
        await dns.stop()
        await origin.stop()
    }

    func echo(at endpoint: Endpoint) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: endpoint.socketAddress) {
            channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "new"))
            var replies = inbound.makeAsyncIterator()
            return try await replies.next().map { String(buffer: $0) } ?? ""
        }
    }
}
