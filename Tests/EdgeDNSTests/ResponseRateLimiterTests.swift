import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Testing

/// Response-rate limiting per client prefix: a second's worth of answers, then every second
/// query answered truncated and the rest dropped, refilling with time; other prefixes unaffected.
@Suite struct ResponseRateLimiterTests {
    @Test func aPrefixOverItsRateSlipsEverySecondQuery() {
        var limiter = ResponseRateLimiter(settings: .init(rate: 4, slip: 2))
        let start = NIODeadline.now()
        let client = IPAddress("198.18.7.7")!
        let decisions = (0..<8).map { _ in limiter.decide(for: client, now: start) }
        #expect(decisions == [.answer, .answer, .answer, .answer, .drop, .slip, .drop, .slip])
        // The same /24 shares the budget; another /24 has its own.
        #expect(limiter.decide(for: IPAddress("198.18.7.200")!, now: start) == .drop)
        #expect(limiter.decide(for: IPAddress("198.18.8.1")!, now: start) == .answer)
        // A quarter of a second later, one answer's worth has come back.
        #expect(limiter.decide(for: client, now: start + .milliseconds(250)) == .answer)
        #expect(limiter.decide(for: client, now: start + .milliseconds(250)) == .slip)
        // IPv6 clients share a /56.
        let v6 = IPAddress("2001:db8:1:aa00::1")!
        for _ in 0..<4 { #expect(limiter.decide(for: v6, now: start) == .answer) }
        #expect(limiter.decide(for: IPAddress("2001:db8:1:aaff::9")!, now: start) != .answer)
        #expect(limiter.decide(for: IPAddress("2001:db8:1:ab00::1")!, now: start) == .answer)
    }

    @Test func zeroTurnsItOffAndTheTableStaysBounded() {
        var off = ResponseRateLimiter(settings: .init(rate: 0))
        let now = NIODeadline.now()
        #expect((0..<1000).allSatisfy { _ in off.decide(for: IPAddress("198.18.0.1")!, now: now) == .answer })
        var bounded = ResponseRateLimiter(settings: .init(rate: 10, maximumPrefixes: 100))
        for index in 0..<10_000 { _ = bounded.decide(for: .v4(UInt32(index) << 8), now: now) }
        #expect(bounded.trackedPrefixes <= 100)
    }

    /// On a real socket: 20 queries at once from one client against a limit of 5 a second.
    @Test func theResponderAnswersTruncatesAndDropsOverUDP() async throws {
        var zone = Zone(apex: DNSName("edge.example")!, nameServers: [DNSName("ns1.edge.example")!])
        zone.add(DNSRecord(name: DNSName("app.edge.example")!, ttl: 60, data: .a(IPAddress("198.19.0.1")!)))
        let server = DNSServer(zones: ZoneStore([zone]), rateLimit: .init(rate: 5, slip: 2))
        let endpoint = try await server.start(at: Endpoint(DNSServerTests.loopback(), 0))
        let client = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
        let replies = try await client.executeThenClose { inbound, outbound in
            for id in 0..<20 {
                var query = ByteBuffer()
                query.writeDNSMessage(DNSMessage.query(id: UInt16(id), name: DNSName("app.edge.example")!, type: .a))
                try await outbound.write(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: query))
            }
            // Every query handled: answered, answered truncated, or dropped.
            let deadline = ContinuousClock.now + .seconds(10)
            while server.counters.queries + server.counters.rateLimited - server.counters.slipped < 20, ContinuousClock.now < deadline {
                await Task.yield()
            }
            var replies: [DNSMessage] = []
            var iterator = inbound.makeAsyncIterator()
            while replies.count < server.counters.queries, let reply = try await iterator.next() {
                replies.append(try reply.data.readDNSMessage())
            }
            return replies
        }
        await server.stop()
        // A second's worth (5, one more if sending took a fifth of a second) answered in full,
        // every second one of the rest truncated, the others dropped.
        let limited = server.counters.rateLimited
        let answered = replies.filter { !$0.truncated && $0.answers.count == 1 }
        #expect((5...6).contains(answered.count))
        #expect(answered.count + limited == 20)
        let slipped = replies.filter(\.truncated)
        #expect(slipped.count == limited / 2)
        #expect(server.counters.slipped == limited / 2)
        #expect(slipped.allSatisfy { $0.answers.isEmpty && $0.questions.first?.name == DNSName("app.edge.example")! })
    }
}
