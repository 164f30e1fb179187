import Benchmark
import EdgeModel
import EdgeProxy
import NIOCore
import NIOPosix
import Synchronization

/// What one TCP connection costs in allocations (and time), in one process: a client connects,
/// sends a byte and reads it back, through an edge node to an echo origin, and straight to the
/// origin. The difference is the node's share: on its relay threads a connection object, its
/// record and events; on SwiftNIO's channels two channels, the origin connect, the relay.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(3), maxIterations: 3000)
    let origin = TCPOrigin()
    let running = Mutex<(nodes: [EdgeNode], origin: Endpoint?)>(([], nil))
    // The same application on a node's relay threads (the default) and on SwiftNIO's channels.
    let edge = Endpoint(IPAddress("127.0.0.31")!, 20031)
    let channelsEdge = Endpoint(IPAddress("127.0.0.32")!, 20031)

    let setUp: @Sendable () async throws -> Void = {
        let echo = try await origin.start(address: IPAddress("127.0.0.1")!)[0]
        let app = Application(
            id: "bench", edge: EdgeListener(transport: .tcp, ports: PortRange(port: edge.port)),
            dns: PublicName(type: .cname, name: "bench.example"),
            origin: .direct([OriginAddress(transport: .tcp, host: .ip(echo.address), ports: PortRange(port: echo.port))]))
        let node = EdgeNode(applications: [app], listen: [edge.address])
        _ = try await node.start()
        var onChannels = ProxyConfiguration()
        onChannels.socketRelay = false
        let channelsNode = EdgeNode(applications: [app], listen: [channelsEdge.address], configuration: onChannels)
        _ = try await channelsNode.start()
        running.withLock { $0 = ([node, channelsNode], echo) }
    }
    let tearDown: @Sendable () async throws -> Void = {
        for node in running.withLock({ $0.nodes }) { await node.stop() }
        await origin.stop()
    }

    /// One connection: a byte there and back, then closed.
    @Sendable func echoOnce(_ endpoint: Endpoint) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: endpoint.socketAddress) {
            channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: [0x2A]))
            var replies = inbound.makeAsyncIterator()
            blackHole(try await replies.next())
        }
    }

    Benchmark(
        "TCP connection through an edge node",
        closure: { benchmark in
            for _ in benchmark.scaledIterations { try await echoOnce(edge) }
        }, setup: setUp, teardown: tearDown)

    Benchmark(
        "TCP connection through an edge node on SwiftNIO channels",
        closure: { benchmark in
            for _ in benchmark.scaledIterations { try await echoOnce(channelsEdge) }
        }, setup: setUp, teardown: tearDown)

    Benchmark(
        "TCP connection straight to the origin",
        closure: { benchmark in
            let target = running.withLock { $0.origin }!
            for _ in benchmark.scaledIterations { try await echoOnce(target) }
        }, setup: setUp, teardown: tearDown)
}
