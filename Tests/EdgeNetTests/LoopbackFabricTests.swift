import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The loopback fabric with a router built in the test: connections and flows reach the target
/// it picks, from the client's own address, across the path's delay; a refused target moves on
/// to the next; severing breaks what crosses a link.
@Suite struct LoopbackFabricTests {
    /// Routes every client to the given targets in order, all across `shape`.
    final class FixedRouter: FabricRouter {
        let targets: [Endpoint]
        let shapeNow: Mutex<LinkShape?>

        init(targets: [Endpoint], shape: LinkShape) {
            self.targets = targets
            shapeNow = Mutex(shape)
        }

        func route(from client: IPAddress, to destination: Endpoint) -> FabricRoute? {
            let shape = shapeNow.withLock { $0 } ?? LinkShape()
            return FabricRoute(
                clientHost: "client",
                targets: targets.enumerated().map {
                    FabricTarget(host: "t\($0.offset)", endpoint: $0.element, source: client, shape: shape)
                })
        }

        func shape(from clientHost: String, to targetHost: String) -> LinkShape? { shapeNow.withLock { $0 } }
    }

    static let next = Atomic<UInt32>(UInt32.random(in: 0..<0x3F_0000))

    /// A fresh loopback address in 127.128.0.0/10, away from fleets' ranges.
    static func address() -> IPAddress { .v4(0x7F80_0000 | (next.wrappingAdd(1, ordering: .relaxed).oldValue % 0x3F_FFFF) + 1) }

    /// Sends a line from `client` to `endpoint` and returns what came back and after how long.
    func exchange(from client: IPAddress, to endpoint: Endpoint) async throws -> (String, Duration) {
        let started = ContinuousClock.now
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: Endpoint(client, 0).socketAddress)
            .connect(to: endpoint.socketAddress).get()
        let reply = channel.eventLoop.makePromise(of: ByteBuffer.self)
        try await channel.pipeline.addHandler(FirstRead(promise: reply))
        try await channel.writeAndFlush(ByteBuffer(string: "ping")).get()
        let buffer = try await reply.futureResult.get()
        let elapsed = ContinuousClock.now - started
        try? await channel.close()
        return (String(buffer: buffer), elapsed)
    }

    final class FirstRead: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<ByteBuffer>
        init(promise: EventLoopPromise<ByteBuffer>) { self.promise = promise }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { promise.succeed(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { promise.fail(ChannelError.eof) }
    }

    @Test func aConnectionReachesTheTargetFromTheClientsAddressAcrossThePathsDelay() async throws {
        let origin = TCPOrigin()
        let target = try await origin.start(address: Self.address())[0]
        let router = FixedRouter(targets: [target], shape: LinkShape(latency: .milliseconds(15)))
        let fabric = LoopbackFabric(router: router)
        let public_ = Endpoint(Self.address(), 7000)
        try await fabric.open(public_, transport: .tcp)
        let client = Self.address()
        let (reply, elapsed) = try await exchange(from: client, to: public_)
        #expect(reply == "ping")
        // There and back across a 15 ms path.
        #expect(elapsed >= .milliseconds(30), "\(elapsed)")
        #expect(origin.connections.first?.peer.address == client)
        #expect(fabric.counters.connections == 1)
        await fabric.stop()
        await origin.stop()
    }

    @Test func aRefusedTargetMovesTheConnectionToTheNext() async throws {
        let origin = TCPOrigin()
        let live = try await origin.start(address: Self.address())[0]
        let dead = Endpoint(Self.address(), live.port)
        let fabric = LoopbackFabric(router: FixedRouter(targets: [dead, live], shape: LinkShape()))
        let public_ = Endpoint(Self.address(), 7001)
        try await fabric.open(public_, transport: .tcp)
        let (reply, _) = try await exchange(from: Self.address(), to: public_)
        #expect(reply == "ping")
        #expect(origin.connections.count == 1)
        await fabric.stop()
        await origin.stop()
    }

    @Test func severingClosesWhatCrossesTheLinkAndAClosedAddressRefuses() async throws {
        let origin = TCPOrigin()
        let target = try await origin.start(address: Self.address())[0]
        let fabric = LoopbackFabric(router: FixedRouter(targets: [target], shape: LinkShape()))
        let public_ = Endpoint(Self.address(), 7002)
        try await fabric.open(public_, transport: .tcp)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: public_.socketAddress).get()
        try await channel.writeAndFlush(ByteBuffer(string: "x")).get()
        // The relay exists once the origin has seen the connection.
        while origin.connections.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        fabric.sever { _, target in target == "t0" }
        try await channel.closeFuture.get()
        await fabric.close(address: public_.address)
        await #expect(throws: (any Error).self) {
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: public_.socketAddress).get()
        }
        await fabric.stop()
        await origin.stop()
    }

    @Test func datagramsCrossWithDelayAndALossyPathDropsThem() async throws {
        let origin = UDPEchoOrigin()
        let target = try await origin.start(at: Endpoint(Self.address(), 0))
        let router = FixedRouter(targets: [target], shape: LinkShape(latency: .milliseconds(10)))
        let fabric = LoopbackFabric(router: router)
        let public_ = Endpoint(Self.address(), 7003)
        try await fabric.open(public_, transport: .udp)
        let client = try await DatagramProbe.open(group: MultiThreadedEventLoopGroup.singleton)
        let started = ContinuousClock.now
        #expect(try await client.send("hello", to: public_, within: .seconds(2)) == "hello")
        #expect(ContinuousClock.now - started >= .milliseconds(20))
        router.shapeNow.withLock { $0 = LinkShape(loss: 1) }
        #expect(try await client.send("again", to: public_, within: .milliseconds(300)) == nil)
        #expect(fabric.counters.datagramsLost >= 1)
        try await client.close()
        await fabric.stop()
        await origin.stop()
    }

    /// A UDP socket that sends one datagram and waits for one reply.
    struct DatagramProbe {
        let channel: any Channel
        let replies: AsyncStream<String>.Continuation
        let stream: AsyncStream<String>

        static func open(group: any EventLoopGroup) async throws -> DatagramProbe {
            let (stream, continuation) = AsyncStream<String>.makeStream()
            let channel = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Replies(continuation: continuation))
                    }
                }
                .bind(to: Endpoint(LoopbackFabricTests.address(), 0).socketAddress).get()
            return DatagramProbe(channel: channel, replies: continuation, stream: stream)
        }

        func send(_ text: String, to endpoint: Endpoint, within limit: Duration) async throws -> String? {
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: ByteBuffer(string: text))).get()
            return await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    for await reply in stream { return reply }
                    return nil
                }
                group.addTask {
                    try? await Task.sleep(for: limit)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
        }

        func close() async throws {
            replies.finish()
            try await channel.close()
        }

        final class Replies: ChannelInboundHandler, Sendable {
            typealias InboundIn = AddressedEnvelope<ByteBuffer>
            let continuation: AsyncStream<String>.Continuation
            init(continuation: AsyncStream<String>.Continuation) { self.continuation = continuation }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                continuation.yield(String(buffer: unwrapInboundIn(data).data))
            }
        }
    }
}
