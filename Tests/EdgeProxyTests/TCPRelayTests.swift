import EdgeDNS
import EdgeModel
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

@Suite struct TCPRelayTests {
    /// On the node's relay threads and, for applications those do not serve, on SwiftNIO's channels.
    @Test(arguments: [true, false])
    func bytesPassBothWaysUnchangedWithHalfClose(socketRelay: Bool) async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        var configuration = ProxyConfiguration()
        configuration.socketRelay = socketRelay
        let node = EdgeNode(
            applications: [application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])], listen: [edge], configuration: configuration
        )
        _ = try await node.start()
        let payload = randomBytes(1 << 20)
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: payload)
        await node.stop()
        await origin.stop()
        #expect(result.received == payload, "all bytes echoed, then EOF passed back after the client's half-close")
        let disconnect = await node.events.first { $0.event == .disconnect }
        #expect(disconnect?.bytesIn == UInt64(payload.count))
        #expect(disconnect?.bytesOut == UInt64(payload.count))
        #expect(disconnect?.status == 200)
        #expect(disconnect?.clientPort == result.local.port)
        #expect(disconnect?.origin == originEndpoint.description)
        #expect(node.events.count(.connect) == 1)
    }

    /// Listening TCP sockets on `endpoint` (IPv4), from /proc/net/tcp.
    static func listeners(on endpoint: Endpoint) throws -> Int {
        guard case .v4(let address) = endpoint.address else { return 0 }
        let local = String(format: "%08X:%04X", address.byteSwapped, endpoint.port)
        // Read to the end: /proc files say they are empty, and a long table comes in pieces.
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp"))
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1] == local && fields[3] == "0A"
        }.count
    }

    /// Waits for a condition another process or thread makes true, checking each millisecond,
    /// for at most `limit`.
    static func eventually(within limit: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    /// A listening socket on `endpoint` that would share its port (SO_REUSEPORT), as HAProxy's do.
    static func sharingListener(on endpoint: Endpoint) throws -> Int32 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(socket, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = endpoint.socketAddress.withSockAddr { Foundation.bind(socket, $0, socklen_t($1)) == 0 }
        try #require(bound && listen(socket, 8) == 0)
        return socket
    }

    @Test func aNodeListensOncePerLoopButNeverSharesAPortWithAnotherProgram() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        let app = application("echo", "tcp/7", origins: ["tcp://\(originEndpoint)"])
        let edge = Endpoint(Loopback.address(), 7)
        let node = EdgeNode(applications: [app], listen: [edge.address], group: group)
        _ = try await node.start()
        let listening = try Self.listeners(on: edge)
        #expect(listening == 3, "one listener per event loop, not \(listening)")
        for index in 0..<6 {
            let result = try await TCPTestClient.exchange(with: edge, sending: Array("hello \(index)".utf8))
            #expect(result.received == Array("hello \(index)".utf8))
        }
        #expect(node.events.count(.disconnect) == 6)

        // A second node on the same address and port is refused, as a program whose listener
        // would share the port is.
        let second = EdgeNode(applications: [app], listen: [edge.address], group: group)
        await #expect(throws: BindError.self) { _ = try await second.start() }
        await node.stop()
        // A process that another test starts holds a copy of every descriptor from its fork to
        // its exec, so a listener closed in that moment stays in the table until the exec.
        #expect(await Self.eventually { (try? Self.listeners(on: edge)) == 0 })
        let foreign = try Self.sharingListener(on: edge)
        let third = EdgeNode(applications: [app], listen: [edge.address], group: group)
        let refused = await #expect(throws: BindError.self) { _ = try await third.start() }
        #expect(refused.map { "\($0)" }?.contains("in use") == true, "\(String(describing: refused))")
        close(foreign)
        #expect(await Self.eventually { (try? Self.listeners(on: edge)) == 0 }, "nothing of the refused node stays bound")
        await origin.stop()
        try await group.shutdownGracefully()
    }

    @Test func portRangeKeepsTheOffset() async throws {
        let originAddress = Loopback.address()
        let origin = TCPOrigin()
        try await origin.start(address: originAddress, ports: Array(9000...9004))
        let edge = Loopback.address()
        let app = application("range", "tcp/7000-7004", origins: ["tcp://\(originAddress):9000-9004"])
        let node = EdgeNode(applications: [app], listen: [edge])
        let listeners = try await node.start()
        #expect(listeners.count == 5)
        _ = try await TCPTestClient.exchange(with: Endpoint(edge, 7003), sending: Array("x".utf8))
        await node.stop()
        await origin.stop()
        #expect(origin.connections.map(\.localPort) == [9003])
    }

    @Test(arguments: [ProxyProtocolMode.v1, .v2])
    func ipv6ClientReachesIPv4OriginWithItsAddressInTheHeader(version: ProxyProtocolMode) async throws {
        let origin = TCPOrigin(expecting: version)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let port = try Loopback.freeIPv6Port()
        let node = EdgeNode(
            applications: [application("smtp", "tcp/\(port)", origins: ["tcp://\(originEndpoint)"], proxy: version)],
            listen: [IPAddress("::1")!])
        _ = try await node.start()
        let result = try await TCPTestClient.exchange(with: Endpoint(IPAddress("::1")!, port), sending: Array("EHLO client\r\n".utf8))
        await node.stop()
        await origin.stop()
        #expect(String(decoding: result.received, as: UTF8.self) == "EHLO client\r\n", "no stray bytes either way")
        let seen = try #require(origin.connections.first)
        #expect(seen.peer.address.isIPv4, "the origin itself is reached over IPv4")
        #expect(seen.header?.source == Endpoint(IPAddress("::1")!, result.local.port))
        #expect(seen.header?.destination == Endpoint(IPAddress("::1")!, port))
        #expect(seen.header?.transport == .stream)
    }

    @Test func unreachableOriginClosesTheClientWithAnOriginError() async throws {
        let dead = Loopback.address()
        let edge = Loopback.address()
        let node = EdgeNode(applications: [application("dead", "tcp/7", origins: ["tcp://\(dead):9"])], listen: [edge])
        _ = try await node.start()
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: Array("hello".utf8))
        await node.stop()
        #expect(result.received.isEmpty)
        let error = await node.events.first { $0.event == .originError }
        #expect(error?.status == 520)
        #expect(node.events.count(.disconnect) == 0)
        #expect(node.counters[.tcpOriginErrors] == 1)
    }

    @Test func failsOverToTheNextOrigin() async throws {
        let dead = Loopback.address()
        let origin = TCPOrigin()
        let alive = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let node = EdgeNode(
            applications: [application("pair", "tcp/7", origins: ["tcp://\(dead):\(alive.port)", "tcp://\(alive)"])], listen: [edge])
        _ = try await node.start()
        for _ in 0..<2 {
            let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: Array("ping".utf8))
            #expect(result.received == Array("ping".utf8))
        }
        await node.stop()
        await origin.stop()
        let connects = node.events.events.filter { $0.event == .connect }
        #expect(connects.map(\.origin) == [alive.description, alive.description])
    }

    @Test func blockedRangeWithAnAllowedAddressInside() async throws {
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let allowed = Loopback.address()
        let blocked = Loopback.address()
        let rules = [
            AccessRule(action: .block, target: .prefix(try IPPrefix.parse("127.0.0.0/8").get())),
            AccessRule(action: .allow, target: .ip(allowed)),
        ]
        let node = EdgeNode(
            applications: [application("guarded", "tcp/7", origins: ["tcp://\(originEndpoint)"], firewall: true)], listen: [edge],
            accessRules: rules)
        _ = try await node.start()
        let ok = try await TCPTestClient.exchange(with: Endpoint(edge, 7), from: allowed, sending: Array("in".utf8))
        let refused = try await TCPTestClient.exchange(with: Endpoint(edge, 7), from: blocked, sending: Array("out".utf8))
        await node.stop()
        await origin.stop()
        #expect(ok.received == Array("in".utf8))
        #expect(refused.received.isEmpty)
        let filtered = await node.events.first { $0.event == .clientFiltered }
        #expect(filtered?.clientIP == blocked.description)
        #expect(filtered?.status == 403)
        #expect(origin.connections.count == 1, "the blocked client never reached the origin")
    }

    @Test func originResetMidStreamIsReported() async throws {
        let originAddress = Loopback.address()
        let resetter = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ResetOnRead()) }
            }
            .bind(to: Endpoint(originAddress, 0).socketAddress).get()
        let originPort = UInt16(resetter.localAddress!.port!)
        let edge = Loopback.address()
        let node = EdgeNode(
            applications: [application("reset", "tcp/7", origins: ["tcp://\(originAddress):\(originPort)"])], listen: [edge])
        _ = try await node.start()
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 7), sending: Array("boom".utf8))
        await node.stop()
        try await resetter.close()
        #expect(result.received == Array("ok".utf8), "what the origin sent before the reset arrives")
        let disconnect = await node.events.first { $0.event == .disconnect }
        #expect(disconnect?.status == 444)
    }

    @Test func aPortWithNoApplicationRefusesAtOnce() async throws {
        let edge = Loopback.address()
        let node = EdgeNode(applications: [application("one", "tcp/7", origins: ["tcp://127.0.0.1:9"])], listen: [edge])
        _ = try await node.start()
        await #expect(throws: (any Error).self) {
            _ = try await TCPTestClient.exchange(with: Endpoint(edge, 8), sending: [1])
        }
        await node.stop()
    }
}

/// Answers "ok", then resets the connection (SO_LINGER 0).
final class ResetOnRead: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "ok"))).whenComplete { _ in
            (channel as! any SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}
