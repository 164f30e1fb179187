import EdgeModel
import NIOCore
import NIOPosix
import Testing

@testable import EdgeProxy

/// The node's own relay threads for plain TCP applications: which applications they take, and
/// that they end with the node rather than outliving it.
@Suite struct SocketRelayTests {
    @Test func onlyPlainApplicationsGoToTheRelayThreads() throws {
        let configuration = ProxyConfiguration()
        func service(_ app: Application) -> ApplicationService {
            ApplicationService(
                app: app, configuration: configuration, events: EventLog(), counters: NodeCounters(),
                matcher: AccessRuleMatcher(rules: [], prefixes: []), resolver: nil,
                smartRouting: nil, gate: ConnectionGate(nodeLimit: 10, applicationLimit: 10))
        }
        var plain = application("plain", "tcp/7", origins: ["tcp://198.18.0.1:7"])
        #expect(SocketRelay.serves(service(plain)))
        plain.proxyProtocol = .v2
        #expect(SocketRelay.serves(service(plain)), "a PROXY header is written by the relay too")
        var tls = plain
        tls.tls = .flexible
        #expect(!SocketRelay.serves(service(tls)))
        var http = plain
        http.trafficType = .http
        #expect(!SocketRelay.serves(service(http)))
        #expect(!SocketRelay.serves(service(application("udp", "udp/53", origins: ["udp://198.18.0.1:53"]))))
    }

    @Test func theThreadsEndOnceTheNodeHasStoppedAndItsLastConnectionClosed() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Endpoint(Loopback.address(), 7)
        let node = EdgeNode(applications: [application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])], listen: [edge.address])
        _ = try await node.start()
        #expect(node.socketRelayEnded == false)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: edge.socketAddress) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await client.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "held"))
            var iterator = inbound.makeAsyncIterator()
            #expect(try await iterator.next().map { String(buffer: $0) } == "held")
            await node.stop()
            // Stopping closes listeners only: the open connection still relays.
            try await outbound.write(ByteBuffer(string: "still"))
            #expect(try await iterator.next().map { String(buffer: $0) } == "still")
            #expect(node.socketRelayEnded == false, "a connection is still open")
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while node.socketRelayEnded != true, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(node.socketRelayEnded == true, "the threads end with the last connection")
        #expect(node.events.count(.disconnect) == 1)
        await origin.stop()
    }
}
