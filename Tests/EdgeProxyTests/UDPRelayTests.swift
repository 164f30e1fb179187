import EdgeDNS
import EdgeModel
import EdgeProxy
import NIOCore
import Testing

@Suite struct UDPRelayTests {
    func node(_ app: Application, _ edge: IPAddress, configure: (inout ProxyConfiguration) -> Void = { _ in }) async throws -> EdgeNode {
        var configuration = ProxyConfiguration()
        configure(&configuration)
        let node = EdgeNode(applications: [app], listen: [edge], configuration: configuration)
        _ = try await node.start()
        return node
    }

    @Test func datagramsAreRelayedAndRepliesReturnToTheRightClient() async throws {
        let origin = UDPEchoOrigin()
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        // Short enough to see the flows expire, long enough that a loaded machine does not
        // expire a flow between two of its own round trips.
        let node = try await node(application("echo", "udp/53", origins: ["udp://\(originEndpoint)"]), edge) {
            $0.udpIdleTimeout = .seconds(1)
        }
        let first = try await UDPTestClient()
        let second = try await UDPTestClient()
        async let a = first.roundTrips([Array("one".utf8), Array("two".utf8)], to: Endpoint(edge, 53))
        async let b = second.roundTrips([Array("three".utf8)], to: Endpoint(edge, 53))
        let (repliesA, repliesB) = try await (a, b)
        #expect(repliesA == [Array("one".utf8), Array("two".utf8)])
        #expect(repliesB == [Array("three".utf8)])
        #expect(Set(origin.datagrams.map(\.peer)).count == 2, "one origin socket per flow")
        let expired = await node.events.first { $0.event == .disconnect && $0.clientPort == first.local.port }
        #expect(expired?.bytesIn == 6)
        #expect(expired?.bytesOut == 6)
        #expect(expired?.status == 200)
        #expect(node.counters[.udpFlowsOpened] == 2)
        await node.stop()
        await origin.stop()
    }

    @Test func aFullFlowTableEvictsTheLeastRecentlyUsed() async throws {
        let origin = UDPEchoOrigin()
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let node = try await node(application("capped", "udp/53", origins: ["udp://\(originEndpoint)"]), edge) { $0.udpMaxFlows = 2 }
        var clients: [UDPTestClient] = []
        for index in 0..<3 {
            let client = try await UDPTestClient()
            clients.append(client)
            #expect(try await client.roundTrips([[UInt8(index)]], to: Endpoint(edge, 53)) == [[UInt8(index)]])
        }
        let evicted = await node.events.first { $0.status == 497 }
        #expect(evicted?.clientPort == clients[0].local.port)
        #expect(node.counters[.udpFlowsEvicted] == 1)
        await node.stop()
        await origin.stop()
    }

    /// The first flow is used again after the second opened: the second is the one to go.
    @Test func aFlowUsedAgainIsNotEvictedBeforeAnIdleOne() async throws {
        let origin = UDPEchoOrigin()
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let node = try await node(application("capped", "udp/53", origins: ["udp://\(originEndpoint)"]), edge) { $0.udpMaxFlows = 2 }
        let clients = [try await UDPTestClient(), try await UDPTestClient(), try await UDPTestClient()]
        for (index, client) in clients.prefix(2).enumerated() {
            #expect(try await client.roundTrips([[UInt8(index)]], to: Endpoint(edge, 53)) == [[UInt8(index)]])
        }
        #expect(try await clients[0].roundTrips([[9]], to: Endpoint(edge, 53)) == [[9]])
        #expect(try await clients[2].roundTrips([[2]], to: Endpoint(edge, 53)) == [[2]])
        let evicted = await node.events.first { $0.status == 497 }
        #expect(evicted?.clientPort == clients[1].local.port)
        await node.stop()
        await origin.stop()
    }

    @Test func simpleProxyProtocolOnEveryDatagramAndStrippedFromReplies() async throws {
        let origin = UDPEchoOrigin(expecting: .simple)
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let node = try await node(application("spp", "udp/5000", origins: ["udp://\(originEndpoint)"], proxy: .simple), edge)
        let client = try await UDPTestClient()
        let replies = try await client.roundTrips([Array("abc".utf8), Array("de".utf8)], to: Endpoint(edge, 5000))
        #expect(replies == [Array("abc".utf8), Array("de".utf8)], "the client sees exactly its payloads")
        #expect(origin.datagrams.map(\.client) == [client.local, client.local])
        #expect(origin.datagrams.map(\.payload) == [Array("abc".utf8), Array("de".utf8)])
        await node.stop()
        await origin.stop()
    }

    @Test func proxyV2OnlyOnTheFirstDatagram() async throws {
        let origin = UDPEchoOrigin(expecting: .v2)
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let node = try await node(application("v2", "udp/5000", origins: ["udp://\(originEndpoint)"], proxy: .v2), edge)
        let client = try await UDPTestClient()
        let replies = try await client.roundTrips([Array("first".utf8), Array("second".utf8)], to: Endpoint(edge, 5000))
        #expect(replies == [Array("first".utf8), Array("second".utf8)])
        #expect(origin.datagrams.map(\.client) == [client.local, nil])
        await node.stop()
        await origin.stop()
    }

    @Test func oversizedDatagramsAreDroppedAsFragmented() async throws {
        let origin = UDPEchoOrigin()
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let node = try await node(application("frag", "udp/53", origins: ["udp://\(originEndpoint)"]), edge)
        let client = try await UDPTestClient()
        try await client.send(Array(repeating: 7, count: 1473), to: Endpoint(edge, 53))
        let dropped = await node.events.first { $0.status == 496 }
        #expect(dropped?.clientPort == client.local.port)
        #expect(
            try await client.roundTrips([Array(repeating: 1, count: 1472)], to: Endpoint(edge, 53)) == [Array(repeating: 1, count: 1472)])
        #expect(node.counters[.udpDroppedFragmented] == 1)
        #expect(origin.datagrams.count == 1, "only the datagram that fits reached the origin")
        await node.stop()
        await origin.stop()
    }

    @Test func blockedDatagramsAreDroppedAndLoggedOnce() async throws {
        let origin = UDPEchoOrigin()
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        let edge = Loopback.address()
        let client = try await UDPTestClient()
        let app = application("guarded", "udp/53", origins: ["udp://\(originEndpoint)"], firewall: true)
        let node = EdgeNode(
            applications: [app], listen: [edge], accessRules: [AccessRule(action: .block, target: .ip(client.local.address))])
        _ = try await node.start()
        for _ in 0..<3 { try await client.send([1], to: Endpoint(edge, 53)) }
        let filtered = await node.events.first { $0.event == .clientFiltered }
        #expect(filtered?.status == 403)
        let allowed = try await UDPTestClient()
        #expect(try await allowed.roundTrips([[9]], to: Endpoint(edge, 53)) == [[9]])
        #expect(node.counters[.udpDroppedFiltered] == 3, "the allowed datagram was read after all three blocked ones")
        #expect(node.events.count(.clientFiltered) == 1)
        await node.stop()
        await origin.stop()
    }
}
