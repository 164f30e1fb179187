import EdgeModel
import NIOCore
import Testing

@testable import EdgeDNS

@Suite struct WireFormatTests {
    let name = DNSName("mail.example.net")!

    func bytes(_ message: DNSMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeDNSMessage(message)
        return buffer
    }

    @Test func queryHasTheRFC1035Layout() {
        let buffer = bytes(DNSMessage.query(id: 0xBEEF, name: DNSName("a.b")!, type: .aaaa, edns: nil))
        #expect(Array(buffer.readableBytesView) == [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 1, 0x62, 0, 0, 28, 0, 1])
    }

    @Test func everyRecordKindRoundTrips() throws {
        let message = DNSMessage(
            id: 7, isResponse: true, authoritative: true, responseCode: .noError, questions: [DNSQuestion(name: name, type: .any)],
            answers: [
                DNSRecord(name: name, ttl: 30, data: .a(IPAddress("198.19.0.1")!)),
                DNSRecord(name: name, ttl: 30, data: .aaaa(IPAddress("2001:db8:a::1")!)),
                DNSRecord(name: name, ttl: 60, data: .cname(DNSName("app-1.edge.example.net")!)),
                DNSRecord(name: DNSName("_smtp._tcp.example.net")!, ttl: 60, data: .srv(priority: 10, weight: 5, port: 25, target: name)),
            ],
            authorities: [
                DNSRecord(
                    name: DNSName("example.net")!, ttl: 300,
                    data: .soa(SOAData(primary: DNSName("ns1.example.net")!, mailbox: DNSName("hostmaster.example.net")!, serial: 42)))
            ],
            additionals: [DNSRecord(name: DNSName("ns1.example.net")!, ttl: 300, data: .ptr(DNSName("x.example.net")!))],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))
        #expect(try bytes(message).readDNSMessage() == message)
    }

    /// Any byte may be in a label: a name is read, compared and written as its bytes, so a
    /// reply echoes a question that is not UTF-8 exactly, and labels never grow past 63 bytes.
    @Test func namesAreBytesNotText() throws {
        let label: [UInt8] = [0x61, 0xD8, 0xFF, 0x2E, 0x41] + [UInt8](repeating: 0xFE, count: 58)
        let name = DNSName(wireLabels: [label, Array("edgesim".utf8), Array("test".utf8)])
        var buffer = ByteBuffer()
        buffer.writeDNSMessage(DNSMessage.query(id: 7, name: name, type: .a))
        let written = Array(buffer.readableBytesView)
        #expect(written[12] == 63)
        #expect(Array(written[13..<76]) == label)
        let read = try buffer.readDNSMessage()
        #expect(read.questions.first?.name.wireLabels.first == label)
        #expect(read.questions.first?.name == name)
        // Case folds for ASCII letters only.
        #expect(DNSName(wireLabels: [[0x41, 0xD8]]) == DNSName(wireLabels: [[0x61, 0xD8]]))
        #expect(DNSName(wireLabels: [[0xC4]]) != DNSName(wireLabels: [[0xE4]]))
        // For people: escaped as in zone files.
        #expect(DNSName(wireLabels: [[0x61, 0x2E, 0x07, 0xFF], Array("test".utf8)]).description == "a\\.\\007\\255.test.")
    }

    /// However many questions a message carries, what is written fits the size asked for.
    @Test func aReplyNeverExceedsItsSize() throws {
        var message = DNSMessage(id: 9, isResponse: true, responseCode: .notImplemented)
        message.questions = (0..<13).map { index in
            DNSQuestion(name: DNSName(wireLabels: (0..<4).map { [UInt8](repeating: 0x61 + UInt8(index), count: 60 + $0) }), type: .a)
        }
        var buffer = ByteBuffer()
        let truncated = buffer.writeDNSMessage(message, maxSize: 512)
        #expect(truncated)
        #expect(buffer.readableBytes == 12)
        let read = try buffer.readDNSMessage()
        #expect(read.truncated && read.questions.isEmpty && read.id == 9 && read.responseCode == .notImplemented)
    }

    @Test func namesAreCompressedWhenWritten() {
        let records = (0..<5).map { DNSRecord(name: DNSName("host\($0).example.net")!, ttl: 1, data: .a(.v4(UInt32($0)))) }
        let message = DNSMessage(
            id: 1, isResponse: true, questions: [DNSQuestion(name: DNSName("host0.example.net")!, type: .a)], answers: records)
        let size = bytes(message).readableBytes
        // The first answer's name is a pointer to the question's; the others write their first
        // label and point at "example.net". Uncompressed it would be 12 + 23 + 5 * 33 = 200 bytes.
        #expect(size == 12 + (19 + 4) + (2 + 10 + 4) + 4 * (6 + 2 + 10 + 4))
    }

    /// Hand-built hostile messages: each is refused with a reason, never a crash or a hang.
    @Test(
        arguments: [
            ([0x00, 0x01, 0x01], "shorter than a DNS header"),
            (header(questions: 1) + [0xC0, 0x0C, 0, 1, 0, 1], "does not point backwards"),
            (header(questions: 1) + [0xC0, 0x40, 0, 1, 0, 1], "does not point backwards"),
            (header(questions: 1) + [64] + Array(repeating: 0x61, count: 64) + [0, 0, 1, 0, 1], "label type"),
            (
                header(questions: 1) + Array(repeating: [63] + Array(repeating: UInt8(0x61), count: 63), count: 5).flatMap { $0 } + [
                    0, 0, 1, 0, 1,
                ], "longer than 255"
            ),
            (header(questions: 1) + [3, 0x61, 0x62], "runs past the end"),
            (header(questions: 1) + [0, 0, 1], "ends inside a field"),
            (header(questions: 1, answers: 1) + [0, 0, 1, 0, 1] + [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4], "runs past the end"),
            (header(questions: 1, answers: 1) + [0, 0, 1, 0, 1] + [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3], "must be 4 bytes"),
            (header(questions: 1) + [0, 0, 1, 0, 1, 0xFF], "follow the last record"),
            (header(questions: 0xFFFF), "claim more records"),
            // Answer, authority and additional counts of 0xFFFF each: their sum must not overflow.
            ([0x12, 0x34, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "claim more records"),
        ] as [([UInt8], String)])
    func malformedMessagesAreRefused(bytes: [UInt8], reason: String) {
        #expect {
            try ByteBuffer(bytes: bytes).readDNSMessage()
        } throws: { error in
            (error as? DNSWireError)?.message.contains(reason) == true
        }
    }

    @Test func pointerLoopsStopAtTheHopLimit() {
        // Each pointer points backwards, yet the chain cycles: 12 -> label -> pointer back to 12.
        var bytes = Self.header(questions: 1)
        bytes += [1, 0x61, 0xC0, 0x0C] + [0, 1, 0, 1]
        // The name at 12 is "a" then a pointer to 12 again: a loop, cut off by the hop limit.
        #expect {
            try ByteBuffer(bytes: bytes).readDNSMessage()
        } throws: { error in
            (error as? DNSWireError)?.message == "more than 16 compression pointers in one name"
        }
    }

    static func header(id: UInt16 = 0x1234, questions: UInt16, answers: UInt16 = 0) -> [UInt8] {
        [
            UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, UInt8(questions >> 8), UInt8(questions & 0xFF), UInt8(answers >> 8),
            UInt8(answers & 0xFF), 0, 0, 0, 0,
        ]
    }
}

private func header(questions: UInt16, answers: UInt16 = 0) -> [UInt8] { WireFormatTests.header(questions: questions, answers: answers) }
