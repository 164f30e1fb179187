import EdgeModel
import EdgeRouting
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import EdgeProxy

/// A connection relayed by real sockets: client → entry edge → relay edge → origin, with the
/// PROXY header naming the true client. The path choice is given measurements directly; the
/// network that makes relaying pay is tested in netns mode (FleetRuns).
@Suite struct SmartRelayTests {
    static func waitFor(_ what: String, within limit: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// An entry and a relay edge serving `app`, probing once, then told that the direct path to
    /// `origin` stopped answering and the relay reaches it: the entry routes through the relay.
    static func relayedPair(
        _ app: Application, origin: Endpoint, targets: (inout SmartRoutingConfiguration) -> Void
    ) async throws -> (entry: EdgeNode, relay: EdgeNode) {
        let (entryAddress, relayAddress) = (Loopback.address(), Loopback.address())
        func configuration(_ name: String, _ address: IPAddress, peer: String, _ peerAddress: IPAddress) -> SmartRoutingConfiguration {
            var configuration = SmartRoutingConfiguration(node: name, address: address, peers: [peer: peerAddress], origins: [])
            targets(&configuration)
            configuration.interval = .seconds(3600)  // one round at start, then only what the test says
            return configuration
        }
        var entryNode = ProxyConfiguration()
        entryNode.nodeName = "entry"
        var relayNode = ProxyConfiguration()
        relayNode.nodeName = "relay"
        let entry = EdgeNode(
            applications: [app], listen: [entryAddress], configuration: entryNode,
            smartRouting: configuration("entry", entryAddress, peer: "relay", relayAddress))
        let relay = EdgeNode(
            applications: [app], listen: [relayAddress], configuration: relayNode,
            smartRouting: configuration("relay", relayAddress, peer: "entry", entryAddress))
        _ = try await relay.start()
        _ = try await entry.start()
        let router = try #require(entry.smartRouter)
        let key = origin.address.description
        try await waitFor("the first probe round") { router.table()["relay"] != nil && router.table()[key]?.answering == true }
        router.received([key: PathMeasurement(rtt: .milliseconds(1))], from: "relay", bytes: 0)
        router.measured(key, rtt: nil)
        #expect(router.route(to: origin.address) == ["relay"])
        return (entry, relay)
    }

    @Test func aRelayedConnectionReachesTheOriginWithTheClientsAddress() async throws {
        let origin = TCPOrigin(expecting: .v1)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        var app = application("argo", "tcp/7", origins: ["tcp://\(originEndpoint)"], proxy: .v1)
        app.smartRouting = true
        let (entry, relay) = try await Self.relayedPair(app, origin: originEndpoint) { $0.origins = [originEndpoint] }
        let entryAddress = try #require(entry.smartRouter?.configuration.address)

        let result = try await TCPTestClient.exchange(with: Endpoint(entryAddress, 7), sending: Array("hello through the relay".utf8))
        _ = await entry.events.first { $0.event == .disconnect }
        await entry.stop()
        await relay.stop()
        await origin.stop()
        #expect(String(decoding: result.received, as: UTF8.self) == "hello through the relay")
        let seen = try #require(origin.connections.first)
        #expect(seen.header?.source == result.local, "the origin sees the client, not an edge")
        #expect(seen.header?.destination == Endpoint(entryAddress, 7), "and the address the client reached")
        #expect(relay.smartRouter?.report().counters.relayedIn == 1)
        let connect = await entry.events.first { $0.event == .connect }
        #expect(connect?.via == ["relay"])
    }

    /// A smart-routed UDP flow: every datagram wrapped for the relay, SPP from the entry edge
    /// reaching the origin unchanged, replies back the same way.
    @Test func aRelayedUDPFlowReachesTheOriginWithTheClientsAddress() async throws {
        let origin = UDPEchoOrigin(expecting: .simple)
        let originEndpoint = try await origin.start(at: Endpoint(Loopback.address(), 0))
        var app = application("argo-udp", "udp/53", origins: ["udp://\(originEndpoint)"], proxy: .simple)
        app.smartRouting = true
        let (entry, relay) = try await Self.relayedPair(app, origin: originEndpoint) {
            $0.udpOrigins = [UDPProbeTarget(endpoint: originEndpoint, proxyProtocol: .simple)]
        }
        let entryAddress = try #require(entry.smartRouter?.configuration.address)

        let client = try await UDPTestClient()
        let replies = try await client.roundTrips([Array("one".utf8), Array("two".utf8)], to: Endpoint(entryAddress, 53))
        #expect(replies == [Array("one".utf8), Array("two".utf8)], "SPP stripped from the replies at the entry edge")
        let seen = origin.datagrams.filter { $0.payload != Array("edgesim probe".utf8) }
        #expect(seen.map(\.payload) == [Array("one".utf8), Array("two".utf8)])
        #expect(seen.allSatisfy { $0.client == client.local }, "the origin sees the client, not an edge")
        #expect(relay.smartRouter?.report().counters.relayedIn == 1, "one relayed flow for both datagrams")
        let connect = await entry.events.first { $0.event == .connect }
        #expect(connect?.via == ["relay"])
        await entry.stop()
        await relay.stop()
        await origin.stop()
    }

    /// Only fleet edges may relay, only to an application's own origins.
    @Test func aRelayRequestFromAStrangerOrToAnotherHostIsRefused() async throws {
        let origin = TCPOrigin(expecting: .v1)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        var app = application("argo", "tcp/7", origins: ["tcp://\(originEndpoint)"], proxy: .v1)
        app.smartRouting = true
        let relayAddress = Loopback.address()
        let peerAddress = Loopback.address()
        var configuration = SmartRoutingConfiguration(
            node: "relay", address: relayAddress, peers: ["entry": peerAddress], origins: [originEndpoint])
        configuration.interval = .seconds(3600)
        let relay = EdgeNode(applications: [app], listen: [relayAddress], smartRouting: configuration)
        _ = try await relay.start()
        func ask(from source: IPAddress, to target: Endpoint) async throws -> [UInt8] {
            var header = ByteBuffer()
            header.writeRelayHeader(
                RelayHeader(
                    app: "argo", client: Endpoint(IPAddress("198.18.0.1")!, 1), edge: Endpoint(relayAddress, 7), origin: target, via: []))
            return try await TCPTestClient.exchange(
                with: Endpoint(relayAddress, configuration.port), from: source, sending: Array(header.readableBytesView) + Array("x".utf8)
            ).received
        }
        #expect(try await ask(from: Loopback.address(), to: originEndpoint) == [], "a stranger is closed")
        #expect(try await ask(from: peerAddress, to: Endpoint(Loopback.address(), 7)) == [], "not an origin of the app")
        #expect(try await ask(from: peerAddress, to: originEndpoint) == Array("x".utf8), "a peer to the app's origin is relayed")
        await relay.stop()
        await origin.stop()
        #expect(relay.smartRouter?.report().counters.relayRefused == 2)
    }

    /// A peer's warm connection may wait for its first byte; once a header starts it must end
    /// within the header timeout. A stranger is closed before it sends anything.
    @Test func aHeaderThatStopsHalfwayIsCutOffAndStrangersAtOnce() async throws {
        var app = application("argo", "tcp/7", origins: ["tcp://198.51.100.7:7"], proxy: .v1)
        app.smartRouting = true
        let relayAddress = Loopback.address()
        let peerAddress = Loopback.address()
        var configuration = SmartRoutingConfiguration(node: "relay", address: relayAddress, peers: ["entry": peerAddress], origins: [])
        configuration.interval = .seconds(3600)
        var limits = ProxyConfiguration()
        limits.headerTimeout = .milliseconds(300)
        let relay = EdgeNode(applications: [app], listen: [relayAddress], configuration: limits, smartRouting: configuration)
        _ = try await relay.start()
        func ends(from source: IPAddress, sending bytes: [UInt8]) async throws -> Bool {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(to: Endpoint(source, 0).socketAddress)
                .connect(to: Endpoint(relayAddress, configuration.port).socketAddress) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                if !bytes.isEmpty { try await outbound.write(ByteBuffer(bytes: bytes)) }
                do {
                    for try await _ in inbound { return false }
                } catch {}
                return true
            }
        }
        #expect(try await ends(from: Loopback.address(), sending: []), "a stranger is closed before it sends")
        #expect(try await ends(from: peerAddress, sending: Array("EDGESIM-RELAY/1 argo 198.18.".utf8)))
        await relay.stop()
        #expect(relay.smartRouter?.report().counters.relayHeaderTimeouts == 1)
        #expect(relay.smartRouter?.report().counters.relayRefused == 2)
    }
}
