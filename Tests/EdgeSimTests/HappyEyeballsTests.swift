import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import EdgeSim

/// Happy eyeballs with real sockets: IPv6 first, IPv4 when IPv6 fails or has not connected by
/// the delay; the first connection wins.
@Suite struct HappyEyeballsTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// A TCP listener on 127.0.0.1, port 0.
    func listener() async throws -> any Channel {
        try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
    }

    func connect(_ address: SocketAddress) -> @Sendable () -> EventLoopFuture<any Channel> {
        { [group] in ClientBootstrap(group: group).connect(to: address) }
    }

    /// An attempt that neither connects nor fails until told, as a blackholed address behaves.
    final class Stalled: Sendable {
        let promise: EventLoopPromise<any Channel>
        let started = Mutex(0)
        init(_ loop: any EventLoop) { promise = loop.makePromise() }
        var attempt: @Sendable () -> EventLoopFuture<any Channel> {
            {
                self.started.withLock { $0 += 1 }
                return self.promise.futureResult
            }
        }
    }

    @Test func ipv6ThatConnectsWinsAndIPv4IsNeverTried() async throws {
        let server = try await listener()
        defer { server.close(promise: nil) }
        let ipv4 = Stalled(group.next())
        defer { ipv4.promise.fail(ChannelError.ioOnClosedChannel) }
        let (channel, attempt) = try await HappyEyeballs(delay: .hours(1)).connect(
            [connect(server.localAddress!), ipv4.attempt], on: group.next()
        ).get()
        #expect(attempt == 0)
        #expect(ipv4.started.withLock { $0 } == 0)
        try await channel.close()
    }

    @Test func aFailedIPv6StartsIPv4AtOnce() async throws {
        let server = try await listener()
        defer { server.close(promise: nil) }
        // Nothing listens on this IPv6 port: refused at once. The delay is an hour, so only the
        // failure can have started the IPv4 attempt.
        let refused = try SocketAddress(ipAddress: "::1", port: 1)
        let (channel, attempt) = try await HappyEyeballs(delay: .hours(1)).connect(
            [connect(refused), connect(server.localAddress!)], on: group.next()
        ).get()
        #expect(attempt == 1)
        #expect(channel.remoteAddress == server.localAddress)
        try await channel.close()
    }

    @Test func ipv6ThatHangsIsOvertakenByIPv4AfterTheDelay() async throws {
        let server = try await listener()
        defer { server.close(promise: nil) }
        let ipv6 = Stalled(group.next())
        let (channel, attempt) = try await HappyEyeballs(delay: .milliseconds(20)).connect(
            [ipv6.attempt, connect(server.localAddress!)], on: group.next()
        ).get()
        #expect(attempt == 1)
        // The IPv6 connection that comes late is closed, not handed out.
        let late = try await ClientBootstrap(group: group).connect(to: server.localAddress!).get()
        ipv6.promise.succeed(late)
        try await late.closeFuture.get()
        try await channel.close()
    }

    @Test func whenBothFailTheLastErrorIsGiven() async throws {
        let refused6 = try SocketAddress(ipAddress: "::1", port: 1)
        let refused4 = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        await #expect(throws: (any Error).self) {
            _ = try await HappyEyeballs(delay: .milliseconds(10)).connect([connect(refused6), connect(refused4)], on: group.next()).get()
        }
    }
}
