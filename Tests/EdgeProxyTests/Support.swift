import EdgeDNS
import EdgeModel
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Distinct loopback addresses, so tests running side by side never share a port.
enum Loopback {
    private static let next = Atomic<UInt32>(UInt32.random(in: 0..<0x3F_0000))

    /// An address in 127.64.0.0/10, different on every call. Linux answers on all of 127/8.
    static func address() -> IPAddress {
        .v4(0x7F40_0000 | (next.wrappingAdd(1, ordering: .relaxed).oldValue % 0x3F_FFFF) + 1)
    }

    /// A port on ::1 that was free a moment ago (IPv6 loopback has one address only).
    static func freeIPv6Port() throws -> UInt16 {
        let channel = try DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "::1", port: 0).wait()
        defer { try? channel.close().wait() }
        let udpPort = UInt16(channel.localAddress!.port!)
        let tcp = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "::1", port: Int(udpPort)).wait()
        try tcp.close().wait()
        return udpPort
    }
}

/// A test application object.
func application(
    _ id: String, _ proto: String, origins: [String], proxy: ProxyProtocolMode = .off, firewall: Bool = false
) -> Application {
    let edge = try! EdgeListener.parse(proto).get()
    return Application(
        id: id, edge: edge, dns: PublicName(type: .cname, name: "\(id).test.example"),
        origin: .direct(origins.map { try! OriginAddress.parse($0).get() }), proxyProtocol: proxy, ipFirewall: firewall)
}

/// A TCP client that sends everything, half-closes, and reads until the other side closes.
enum TCPTestClient {
    struct Result {
        var received: [UInt8]
        var local: Endpoint
    }

    static func exchange(with server: Endpoint, from source: IPAddress? = nil, sending bytes: [UInt8]) async throws -> Result {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
        if let source { bootstrap = bootstrap.bind(to: Endpoint(source, 0).socketAddress) }
        let channel = try await bootstrap.connect(to: server.socketAddress) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
        let local = channel.channel.localAddress.flatMap(Endpoint.init)!
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            outbound.finish()
            var received: [UInt8] = []
            do {
                for try await chunk in inbound { received += chunk.readableBytesView }
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                // A reset ends the stream like EOF does; the caller checks what arrived.
            }
            return Result(received: received, local: local)
        }
    }
}

/// A UDP client socket bound to its own loopback address; replies queue in order.
final class UDPTestClient: Sendable {
    let channel: any Channel
    let local: Endpoint
    private let inbox: ReplyInbox

    init(at address: IPAddress = Loopback.address()) async throws {
        let inbox = ReplyInbox()
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ReplyCollector(inbox: inbox)) }
            }
            .bind(to: Endpoint(address, 0).socketAddress).get()
        local = channel.localAddress.flatMap(Endpoint.init)!
        self.inbox = inbox
    }

    deinit {
        channel.close(promise: nil)
    }

    func send(_ bytes: [UInt8], to server: Endpoint) async throws {
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: server.socketAddress, data: ByteBuffer(bytes: bytes)))
    }

    /// Sends each payload and waits (up to 10 s each) for one reply to each, in order.
    func roundTrips(_ payloads: [[UInt8]], to server: Endpoint) async throws -> [[UInt8]] {
        var replies: [[UInt8]] = []
        for payload in payloads {
            try await send(payload, to: server)
            guard let reply = await inbox.next(within: .seconds(10)) else { break }
            replies.append(reply)
        }
        return replies
    }
}

/// Datagrams received, handed out one at a time to whoever waits.
final class ReplyInbox: Sendable {
    private let state = Mutex<(queue: [[UInt8]], waiter: CheckedContinuation<[UInt8]?, Never>?)>(([], nil))

    func deliver(_ reply: [UInt8]) {
        let waiter = state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.queue.append(reply)
            return nil
        }
        waiter?.resume(returning: reply)
    }

    func next(within timeout: Duration) async -> [UInt8]? {
        let timer = Task {
            try await Task.sleep(for: timeout)
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [UInt8]? in
                if !state.queue.isEmpty { return state.queue.removeFirst() }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

final class ReplyCollector: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let inbox: ReplyInbox

    init(inbox: ReplyInbox) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.deliver(Array(unwrapInboundIn(data).data.readableBytesView))
    }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}
