import EdgeModel
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A counter tasks share.
final class Count: Sendable {
    private let value = Atomic(0)
    /// Adds one and returns the count before.
    @discardableResult func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
    var current: Int { value.load(ordering: .relaxed) }
}

/// The three loads, each bounded in count and in time.
enum Workloads {
    /// One TCP connection: `bytes` as fast as the path takes them; bytes per second.
    static func throughput(_ host: String, _ port: Int, bytes: Int, deadline: Duration) async throws -> Double {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await throughput(over: channel, bytes: bytes, deadline: deadline)
    }

    /// `bytes` over a connection to the sink, whose count comes back after the half-close;
    /// bytes per second. An end without TLS close_notify after the count is an end.
    static func throughput(over channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, bytes: Int, deadline: Duration) async throws -> Double {
        let chunk = ByteBuffer(repeating: 0x5A, count: 64 * 1024)
        let clock = ContinuousClock()
        let start = clock.now
        let received: UInt64 = try await channel.executeThenClose { inbound, outbound in
            var sent = 0
            while sent < bytes, clock.now - start < deadline {
                try await outbound.write(chunk)
                sent += chunk.readableBytes
            }
            outbound.finish()
            var reply = ByteBuffer()
            do {
                for try await part in inbound { reply.writeImmutableBuffer(part) }
            } catch NIOSSLError.uncleanShutdown {
                // The relay closed TCP after the count without close_notify: the count is here.
            }
            return reply.readInteger(as: UInt64.self) ?? 0
        }
        return Double(received) / (clock.now - start).seconds
    }

    /// `total` connections, `concurrency` at a time, each one byte there and back; per second.
    static func connections(_ host: String, _ port: Int, total: Int, concurrency: Int, deadline: Duration) async throws -> (
        rate: Double, done: Int, failed: Int
    ) {
        try await connections(total: total, concurrency: concurrency, deadline: deadline) {
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        }
    }

    /// `total` connections made by `connect`, `concurrency` at a time, each one byte there and
    /// back; per second.
    static func connections(
        total: Int, concurrency: Int, deadline: Duration,
        connect: @escaping @Sendable () async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer>
    ) async throws -> (rate: Double, done: Int, failed: Int) {
        let clock = ContinuousClock()
        let start = clock.now
        let next = Count()
        let done = Count()
        let failed = Count()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while next.increment() < total, clock.now - start < deadline {
                        do {
                            let echoed = try await connect().executeThenClose { inbound, outbound in
                                try await outbound.write(ByteBuffer(bytes: [1]))
                                var iterator = inbound.makeAsyncIterator()
                                return try await iterator.next()?.readableBytes == 1
                            }
                            if echoed { done.increment() } else { failed.increment() }
                        } catch {
                            failed.increment()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        return (Double(done.current) / (clock.now - start).seconds, done.current, failed.current)
    }

    /// `sockets` UDP clients each keeping `window` 64-byte datagrams in flight until `total`
    /// replies came back or the deadline passed; replies per second.
    static func datagrams(_ host: String, _ port: Int, total: Int, sockets: Int, window: Int, deadline: Duration) async throws -> (
        rate: Double, lost: Int
    ) {
        let clock = ContinuousClock()
        let start = clock.now
        let target = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let replies = Count()
        let sent = Count()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<sockets {
                group.addTask {
                    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .bind(host: "127.0.0.1", port: 0) { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                                    wrappingChannelSynchronously: channel)
                            }
                        }
                    let payload = ByteBuffer(repeating: 7, count: 64)
                    try await channel.executeThenClose { inbound, outbound in
                        for _ in 0..<window {
                            sent.increment()
                            try await outbound.write(AddressedEnvelope(remoteAddress: target, data: payload))
                        }
                        // Lost datagrams shrink the window; a watchdog ends the socket if all are lost.
                        let watchdog = Task {
                            try await Task.sleep(for: deadline)
                            try await channel.channel.close()
                        }
                        defer { watchdog.cancel() }
                        for try await _ in inbound {
                            let count = replies.increment() + 1
                            if count >= total || clock.now - start > deadline { break }
                            sent.increment()
                            try await outbound.write(AddressedEnvelope(remoteAddress: target, data: payload))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let received = replies.current
        return (Double(received) / (clock.now - start).seconds, max(0, sent.current - received - sockets * window))
    }
}
