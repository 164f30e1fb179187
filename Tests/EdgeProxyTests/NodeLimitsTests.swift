import EdgeModel
import EdgeProxy
import Glibc
import NIOCore
import NIOPosix
import Testing

/// A node's limits on TCP: connections per node and per application are refused over the
/// limit, and a connection on which nothing moves is closed, sooner once half-closed. Each hit
/// is an event with its status and the limit's name, and a counter.
@Suite struct NodeLimitsTests {
    /// A client connection and the one iterator its inbound side allows.
    final class Connection {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator

        init(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
            self.channel = channel
            inbound = channel.inbound.makeAsyncIterator()
        }

        /// A test that ends early (a failed expectation that throws) must not leave the writer
        /// unfinished: NIO traps on that.
        deinit {
            channel.outbound.finish()
        }

        /// Sends a line and waits for it to come back: the connection is relayed end to end.
        func echo() async throws -> Bool {
            try await channel.outbound.write(ByteBuffer(string: "ping"))
            return try await inbound.next().map { String(buffer: $0) } == "ping"
        }

        /// Reads until the node ends the connection (EOF or reset); true when no data came first.
        func endsWithoutData() async -> Bool {
            defer { channel.outbound.finish() }
            do {
                return try await inbound.next() == nil
            } catch {
                return true
            }
        }

        /// Half-closes, then closes. The node may answer the half-close by closing its side, and
        /// NIO then closes the channel itself first: that is fine.
        func close() async throws {
            channel.outbound.finish()
            do {
                try await channel.channel.close()
            } catch ChannelError.alreadyClosed {}
        }
    }

    func open(_ endpoint: Endpoint) async throws -> Connection {
        Connection(
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(to: endpoint.socketAddress) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                })
    }

    /// A connection the node refuses as it accepts it: reset before a byte comes. The reset can
    /// arrive before the client has finished connecting, so a connect that fails with it counts.
    func refused(_ endpoint: Endpoint) async -> Bool {
        do {
            return try await open(endpoint).endsWithoutData()
        } catch {
            return "\(error)".contains("reset")
        }
    }

    func node(_ apps: [Application], edge: IPAddress, _ configure: (inout ProxyConfiguration) -> Void) async throws -> EdgeNode {
        var configuration = ProxyConfiguration()
        configure(&configuration)
        let node = EdgeNode(applications: apps, listen: [edge], configuration: configuration)
        _ = try await node.start()
        return node
    }

    @Test func connectionsOverTheNodesLimitAreRefusedUntilOneCloses() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let node = try await node([application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])], edge: edge) {
            $0.maxTCPConnections = 2
        }
        let first = try await open(Endpoint(edge, 7))
        let second = try await open(Endpoint(edge, 7))
        #expect(try await first.echo())
        #expect(try await second.echo())
        #expect(await refused(Endpoint(edge, 7)))
        let refused = await node.events.first { $0.event == .clientLimited }
        #expect(refused?.status == 495)
        #expect(refused?.message == "the node holds 2 connections (tcp_connections 2)")
        #expect(node.counters[.tcpRefusedLimit] == 1)

        // One closes: its place is free again.
        try await first.close()
        _ = await node.events.first { $0.event == .disconnect }
        let fourth = try await open(Endpoint(edge, 7))
        #expect(try await fourth.echo())
        #expect(node.gate.total == 2)
        for connection in [second, fourth] { try await connection.close() }
        await node.stop()
        await origin.stop()
    }

    @Test func oneApplicationAtItsLimitLeavesTheOthersAlone() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let apps = [
            application("busy", "tcp/7", origins: ["tcp://\(originEndpoint)"]),
            application("calm", "tcp/8", origins: ["tcp://\(originEndpoint)"]),
        ]
        let node = try await node(apps, edge: edge) { $0.maxTCPConnectionsPerApplication = 1 }
        let busy = try await open(Endpoint(edge, 7))
        #expect(try await busy.echo())
        #expect(await refused(Endpoint(edge, 7)))
        let calm = try await open(Endpoint(edge, 8))
        #expect(try await calm.echo())
        let refused = await node.events.first { $0.event == .clientLimited }
        #expect(refused?.app == "busy")
        #expect(refused?.message == "busy holds 1 connections (tcp_connections_per_app 1)")
        for connection in [busy, calm] { try await connection.close() }
        await node.stop()
        await origin.stop()
    }

    @Test func anIdleConnectionIsClosed() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let node = try await node([application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])], edge: edge) {
            $0.tcpIdleTimeout = .milliseconds(300)
        }
        // Nothing sent: the node ends it (as a disconnect, or before the origin leg is up, an
        // origin error with the same status).
        let connection = try await open(Endpoint(edge, 7))
        #expect(await connection.endsWithoutData())
        let closed = await node.events.first { $0.status == 498 }
        #expect(closed?.message == "idle for 0.3 s (tcp_idle_timeout)")
        #expect(closed?.bytesIn == 0)
        #expect(node.counters[.tcpTimedOut] == 1)
        #expect(node.gate.total == 0)
        await node.stop()
        await origin.stop()
    }

    /// The client has said all it will (half-close); the origin neither reads nor answers. The
    /// half-closed timeout ends it long before the idle timeout would.
    @Test func aHalfClosedConnectionWhoseOriginStopsIsClosedSooner() async throws {
        // Listens and never accepts: the kernel completes the handshake and keeps what arrives.
        let stuck = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(stuck) }
        let originEndpoint = Endpoint(Loopback.address(), 0)
        let address = originEndpoint.socketAddress
        let bound = address.withSockAddr { pointer, length in bind(stuck, pointer, socklen_t(length)) }
        #expect(bound == 0)
        #expect(listen(stuck, 8) == 0)
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(stuck, $0, &length) }
        }
        let port = UInt16(bigEndian: local.sin_port)
        _ = address
        let origin = Endpoint(originEndpoint.address, port)
        let edge = Loopback.address()
        let node = try await node([application("stuck", "tcp/7", origins: ["tcp://\(origin)"])], edge: edge) {
            $0.tcpIdleTimeout = .seconds(60)
            $0.tcpHalfClosedTimeout = .milliseconds(300)
        }
        let connection = try await open(Endpoint(edge, 7))
        _ = await node.events.first { $0.event == .connect }
        try await connection.channel.outbound.write(ByteBuffer(string: "a request nobody reads"))
        connection.channel.outbound.finish()
        #expect(await connection.endsWithoutData())
        let closed = await node.events.first { $0.event == .disconnect }
        #expect(closed?.status == 498)
        #expect(closed?.message == "half-closed and nothing moved for 0.3 s (tcp_half_closed_timeout)")
        await node.stop()
    }

    /// An origin that reads slowly: the node takes the client's bytes no faster than the origin
    /// does (reads wait while `buffered_bytes` are queued), and every byte still arrives and
    /// comes back in order.
    @Test func aSlowReaderHoldsBackTheOtherSideAndEverythingArrives() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        origin.setFault(.slowRead(bytesPerSecond: 512 * 1024))
        let edge = Loopback.address()
        var limits = NodeLimits()
        limits.bufferedBytes = 16 * 1024
        let node = try await node([application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])], edge: edge) {
            $0 = ProxyConfiguration(limits: limits)
        }
        let sent = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let connection = try await open(Endpoint(edge, 7))
        // Written on another task while this one reads what comes back.
        let outbound = connection.channel.outbound
        let writer = Task {
            try await outbound.write(sent)
            outbound.finish()
        }
        var received = ByteBuffer()
        while var chunk = try await connection.inbound.next() { received.writeBuffer(&chunk) }
        try await writer.value
        #expect(received == sent, "\(received.readableBytes)")
        let closed = await node.events.first { $0.event == .disconnect }
        #expect((closed?.readsHeld ?? 0) > 0, "reads from the client waited for the origin")
        #expect(node.counters[.tcpReadsHeld] == 1)
        #expect(
            closed?.bytesIn == UInt64(sent.readableBytes) && closed?.bytesOut == UInt64(sent.readableBytes), "\(String(describing: closed))"
        )
        await node.stop()
        await origin.stop()
    }
}
