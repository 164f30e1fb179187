import EdgeDNS
import EdgeModel
import NIOCore

/// The fleet's DNS path on one datagram: the reply (if any) must itself be a readable response
/// with the query's id, and must echo the query's question exactly.
enum DNSFuzzCheck {
    static let server: DNSServer = {
        let apex = DNSName("edgesim.test")!
        var zone = Zone(apex: apex, nameServers: [DNSName("ns1.edgesim.test")!])
        zone.add(DNSRecord(name: DNSName("app.edgesim.test")!, ttl: 30, data: .a(IPAddress("198.19.0.1")!)))
        zone.add(DNSRecord(name: DNSName("app.edgesim.test")!, ttl: 30, data: .aaaa(IPAddress("2001:db8:a::1")!)))
        zone.add(DNSRecord(name: DNSName("www.edgesim.test")!, ttl: 30, data: .cname(DNSName("app.edgesim.test")!)))
        var reverse = Zone(apex: DNSName("18.198.in-addr.arpa")!, nameServers: [DNSName("ns1.edgesim.test")!])
        reverse.add(DNSRecord(name: .reverse(of: IPAddress("198.18.0.3")!), ttl: 30, data: .ptr(DNSName("paris.hosts.edgesim.test")!)))
        return DNSServer(zones: ZoneStore([zone, reverse]))
    }()

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        let input = ByteBuffer(bytes: bytes)
        let query = try? input.readDNSMessage()
        for limit in [512, 4096] {
            guard let reply = server.respond(to: input, maxSize: { _ in limit }, allocator: ByteBufferAllocator()) else { continue }
            guard reply.readableBytes <= max(limit, 512) else { throw FuzzFinding("reply of \(reply.readableBytes) bytes over \(limit)") }
            let read: DNSMessage
            do {
                read = try reply.readDNSMessage()
            } catch {
                throw FuzzFinding("the reply does not read back: \(error)")
            }
            guard read.isResponse else { throw FuzzFinding("the reply is not marked as a response") }
            if let query {
                guard read.id == query.id else { throw FuzzFinding("the reply's id \(read.id) is not the query's \(query.id)") }
                // The question goes back byte for byte (case and all), as resolvers match on it.
                if query.questions.count == 1, read.questions.count == 1, let asked = questionBytes(bytes),
                    let echoed = questionBytes(Array(reply.readableBytesView)), asked != echoed
                {
                    throw FuzzFinding("the reply's question \(echoed) is not the query's \(asked)")
                }
            }
        }
        // A message that reads, written back, reads the same again.
        if let asked = questionBytes(bytes), query != nil {
            var written = ByteBuffer()
            if let query { written.writeDNSMessage(query) }
            if let again = questionBytes(Array(written.readableBytesView)), again != asked {
                throw FuzzFinding("a question changed in a read and write: \(asked) became \(again)")
            }
        }
        guard let query else { return }
        var written = ByteBuffer()
        written.writeDNSMessage(query)
        guard let again = try? written.readDNSMessage() else { throw FuzzFinding("a message read does not read back once written") }
        guard again.questions == query.questions else { throw FuzzFinding("questions changed in a write and read: \(query.questions)") }
    }

    /// The first question's bytes (an uncompressed name, type and class) after the header.
    static func questionBytes(_ message: [UInt8]) -> [UInt8]? {
        guard message.count > 12, message[4] == 0, message[5] >= 1 else { return nil }
        var offset = 12
        while offset < message.count {
            let length = Int(message[offset])
            if length == 0 { break }
            guard length <= 63 else { return nil }
            offset += 1 + length
        }
        guard offset + 5 <= message.count else { return nil }
        return Array(message[12..<(offset + 5)])
    }
}
