import EdgeDNS
import EdgeModel
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The responder on a real socket, queried by `dig` (an independent client) and by raw packets.
@Suite struct DNSServerTests {
    static let dig: String? = ["/usr/bin/dig", "/bin/dig"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let next = Atomic<UInt32>(UInt32.random(in: 0..<0x3F_0000))

    static func loopback() -> IPAddress { .v4(0x7F40_0000 | (next.wrappingAdd(1, ordering: .relaxed).oldValue % 0x3F_FFFF) + 1) }

    /// A UDP socket on loopback to send raw queries from.
    func udpClient() async throws -> NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>> {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
    }

    func withServer(_ body: (Endpoint, DNSServer) async throws -> Void) async throws {
        var zone = AnswererTests.zone()
        for index in 0..<100 {
            zone.add(DNSRecord(name: DNSName("big.edge.example")!, ttl: 60, data: .a(.v4(0xC613_0100 + UInt32(index)))))
        }
        let reverse = Zone(apex: DNSName("19.198.in-addr.arpa")!, nameServers: [DNSName("ns1.edge.example")!])
        let server = DNSServer(zones: ZoneStore([zone, reverse]))
        let endpoint = try await server.start(at: Endpoint(Self.loopback(), 0))
        try await body(endpoint, server)
        await server.stop()
    }

    /// Runs dig and returns its output; dig gives up by itself after +time and +tries.
    func dig(_ server: Endpoint, _ arguments: [String]) throws -> String? {
        guard let dig = Self.dig else {
            try #require(ProcessInfo.processInfo.environment["CI"] != "true", "dig is not installed; scripts/setup installs dnsutils")
            print("skipped: dig is not installed (scripts/setup installs dnsutils)")
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dig)
        process.arguments = ["@\(server.address)", "-p", "\(server.port)", "+time=2", "+tries=1", "+norecurse"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = try pipe.fileHandleForReading.readAll()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }

    /// The records of one section as "name ttl type data" lines.
    func section(_ output: String, _ title: String) -> [String] {
        let lines = output.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix(";; \(title) SECTION:") }) else { return [] }
        return lines[(start + 1)...].prefix { !$0.isEmpty }.map {
            $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }
    }

    @Test(arguments: [[], ["+tcp"], ["+noedns"]])
    func addressesThroughCNAMEWithAuthority(options: [String]) async throws {
        try await withServer { endpoint, _ in
            guard let output = try dig(endpoint, options + ["app.edge.example", "A"]) else { return }
            #expect(output.contains("status: NOERROR"))
            #expect(output.contains("flags: qr aa"), "authoritative answer")
            #expect(
                section(output, "ANSWER") == [
                    "app.edge.example. 30 IN CNAME a1.apps.edge.example.", "a1.apps.edge.example. 30 IN A 198.19.0.1",
                ])
            #expect(output.contains("OPT PSEUDOSECTION") == !options.contains("+noedns"))
            if !options.contains("+noedns") { #expect(output.contains("udp: 1232")) }
        }
    }

    @Test func aaaaAndSOAAndNS() async throws {
        try await withServer { endpoint, _ in
            guard let aaaa = try dig(endpoint, ["a1.apps.edge.example", "AAAA"]) else { return }
            #expect(section(aaaa, "ANSWER") == ["a1.apps.edge.example. 30 IN AAAA 2001:db8:a::1"])
            let soa = try dig(endpoint, ["edge.example", "SOA"]) ?? ""
            #expect(
                section(soa, "ANSWER").first?.hasPrefix("edge.example. 300 IN SOA ns1.edge.example. hostmaster.edge.example. 1 ") == true)
            let ns = try dig(endpoint, ["edge.example", "NS"]) ?? ""
            #expect(section(ns, "ANSWER") == ["edge.example. 300 IN NS ns1.edge.example."])
        }
    }

    @Test func negativeAnswersAndRefusal() async throws {
        try await withServer { endpoint, _ in
            guard let nx = try dig(endpoint, ["nothing.edge.example", "A"]) else { return }
            #expect(nx.contains("status: NXDOMAIN") && nx.contains("flags: qr aa"))
            #expect(section(nx, "AUTHORITY").first?.hasPrefix("edge.example. 30 IN SOA") == true)
            let nodata = try dig(endpoint, ["v4only.edge.example", "AAAA"]) ?? ""
            #expect(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"))
            #expect(section(nodata, "AUTHORITY").first?.hasPrefix("edge.example. 30 IN SOA") == true)
            let ptr = try dig(endpoint, ["-x", "198.19.0.1"]) ?? ""
            #expect(ptr.contains("status: NXDOMAIN"), "application addresses have no reverse DNS")
            let refused = try dig(endpoint, ["example.com", "A"]) ?? ""
            #expect(refused.contains("status: REFUSED"))
        }
    }

    @Test func largeAnswersAreTruncatedOverUDPAndWholeOverTCP() async throws {
        try await withServer { endpoint, server in
            guard let udp = try dig(endpoint, ["+noedns", "+ignore", "big.edge.example", "A"]) else { return }
            #expect(udp.contains(" tc"), "TC set when 100 A records do not fit 512 bytes")
            #expect(section(udp, "ANSWER").isEmpty)
            let retried = try dig(endpoint, ["+noedns", "big.edge.example", "A"]) ?? ""
            #expect(section(retried, "ANSWER").count == 100, "dig retries over TCP and gets all of them")
            #expect(server.counters.truncated >= 2)
        }
    }

    /// A query asked again is answered from the reply kept for it, under its own ID, until the
    /// zone changes; then with the new records.
    @Test func aRepeatedQueryGetsTheSameReplyUnderItsIDUntilTheZoneChanges() async throws {
        try await withServer { endpoint, server in
            let client = try await udpClient()
            try await client.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                func ask(_ id: UInt16) async throws -> DNSMessage? {
                    var query = ByteBuffer()
                    query.writeDNSMessage(DNSMessage.query(id: id, name: DNSName("a1.apps.edge.example")!, type: .a))
                    try await outbound.write(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: query))
                    return try await iterator.next().map { try $0.data.readDNSMessage() }
                }
                var replies: [DNSMessage] = []
                for id in [UInt16(1), 2, 0xBEEF] { if let reply = try await ask(id) { replies.append(reply) } }
                #expect(replies.map(\.id) == [1, 2, 0xBEEF])
                #expect(replies.allSatisfy { $0.answers.map(\.data) == [.a(IPAddress("198.19.0.1")!)] })
                #expect(server.counters.queries == 3)
                server.zones.update(AnswererTests.apex) { zone in
                    zone.remove(DNSName("a1.apps.edge.example")!, type: .a)
                    zone.add(DNSRecord(name: DNSName("a1.apps.edge.example")!, ttl: 30, data: .a(IPAddress("198.19.0.9")!)))
                }
                let after = try await ask(3)
                #expect(after?.id == 3 && after?.answers.map(\.data) == [.a(IPAddress("198.19.0.9")!)])
                let again = try await ask(4)
                #expect(again?.id == 4 && again?.answers.map(\.data) == [.a(IPAddress("198.19.0.9")!)])
            }
        }
    }

    @Test func malformedPacketsGetFormerrOrAreDroppedAndTheServerGoesOn() async throws {
        try await withServer { endpoint, server in
            let client = try await udpClient()
            let hostile: [[UInt8]] = [
                WireFormatTests.header(questions: 1) + [0xC0, 0x0C, 0, 1, 0, 1],  // pointer to itself
                WireFormatTests.header(questions: 1) + [1, 0x61, 0xC0, 0x0C, 0, 1, 0, 1],  // pointer loop
                WireFormatTests.header(questions: 1) + [0xC0, 0xFF, 0, 1, 0, 1],  // pointer past the end
                WireFormatTests.header(questions: 1) + [64] + Array(repeating: 0x61, count: 64) + [0, 0, 1, 0, 1],  // over-long label
                WireFormatTests.header(questions: 1)
                    + Array(repeating: [63] + Array(repeating: UInt8(0x61), count: 63), count: 5).flatMap { $0 } + [0, 0, 1, 0, 1],
                WireFormatTests.header(questions: 1) + [3, 0x61],  // truncated question
                WireFormatTests.header(questions: 1, answers: 1) + [0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0],  // truncated record
                WireFormatTests.header(questions: 0),  // zero questions
                WireFormatTests.header(questions: 2) + [0, 0, 1, 0, 1, 0, 0, 1, 0, 1],  // two questions
                [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],  // a response, not a query
                [0x12, 0x34, 0x01],  // truncated header
            ]
            let codes: [UInt8?] = try await client.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var codes: [UInt8?] = []
                for packet in hostile {
                    try await outbound.write(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: ByteBuffer(bytes: packet)))
                    // A valid query after each: its answer proves the server did not stall, and
                    // any reply to the hostile packet arrives before it.
                    var probe = ByteBuffer()
                    probe.writeDNSMessage(DNSMessage.query(id: 0xABCD, name: DNSName("app.edge.example")!, type: .a))
                    try await outbound.write(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: probe))
                    var code: UInt8?
                    while let reply = try await iterator.next() {
                        let message = try reply.data.readDNSMessage()
                        if message.id == 0xABCD {
                            #expect(message.answers.count == 2)
                            break
                        }
                        code = message.responseCode.rawValue
                    }
                    codes.append(code)
                }
                return codes
            }
            // FORMERR (1) where the header could be read; nothing for a response or a cut header.
            #expect(codes == [1, 1, 1, 1, 1, 1, 1, 1, 1, nil, nil])
            #expect(server.counters.formatErrors == 9)
            #expect(server.counters.dropped == 2)
        }
    }
}
