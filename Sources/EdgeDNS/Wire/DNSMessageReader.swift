import EdgeModel
import NIOCore

extension ByteBuffer {
    /// Reads a whole DNS message from the readable bytes, strictly: every length and pointer is
    /// checked, pointers must point backwards and may be followed 16 times at most, labels are at
    /// most 63 bytes and names 255, and nothing may follow the last record. Does not move the
    /// reader index.
    public func readDNSMessage() throws(DNSWireError) -> DNSMessage {
        var parser = DNSParser(bytes: Array(readableBytesView))
        return try parser.message()
    }
}

struct DNSParser {
    static let maxPointerHops = 16

    let bytes: [UInt8]
    var offset = 0
    var id: UInt16?

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func fail(_ message: String) -> DNSWireError { DNSWireError(message, id: id) }

    mutating func u8() throws(DNSWireError) -> UInt8 {
        guard offset < bytes.count else { throw fail("message ends inside a field at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSWireError) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw fail("message ends inside a field at byte \(offset)") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(DNSWireError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    mutating func take(_ count: Int) throws(DNSWireError) -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else { throw fail("message ends inside a field at byte \(offset)") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func readName() throws(DNSWireError) -> DNSName {
        var labels: [[UInt8]] = []
        var position = offset
        var jumped = false
        var hops = 0
        var length = 1
        while true {
            guard position < bytes.count else { throw fail("name runs past the end of the message") }
            let size = Int(bytes[position])
            if size & 0xC0 == 0xC0 {
                guard position + 1 < bytes.count else { throw fail("compression pointer cut off at the end") }
                let target = (size & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < position else { throw fail("compression pointer at byte \(position) does not point backwards") }
                hops += 1
                guard hops <= Self.maxPointerHops else { throw fail("more than \(Self.maxPointerHops) compression pointers in one name") }
                if !jumped { offset = position + 2 }
                jumped = true
                position = target
                continue
            }
            guard size & 0xC0 == 0 else { throw fail("label type 0x\(String(size, radix: 16)) is not supported") }
            if size == 0 {
                if !jumped { offset = position + 1 }
                return DNSName(wireLabels: labels)
            }
            length += size + 1
            guard length <= 255 else { throw fail("name is longer than 255 bytes") }
            guard position + 1 + size <= bytes.count else { throw fail("label runs past the end of the message") }
            labels.append(Array(bytes[(position + 1)..<(position + 1 + size)]))
            position += 1 + size
        }
    }

    mutating func message() throws(DNSWireError) -> DNSMessage {
        guard bytes.count >= 12 else { throw fail("message is \(bytes.count) bytes, shorter than a DNS header") }
        id = try u16()
        let flags = try u16()
        let counts = [try u16(), try u16(), try u16(), try u16()]
        var message = DNSMessage(
            id: id!, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF), authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0, recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
            responseCode: DNSResponseCode(rawValue: UInt8(flags & 0xF)) ?? .serverFailure)
        // Each record takes at least 11 bytes and each question 5: counts beyond that are lies.
        guard Int(counts[0]) * 5 + (Int(counts[1]) + Int(counts[2]) + Int(counts[3])) * 11 <= bytes.count else {
            throw fail("section counts claim more records than the message holds")
        }
        for _ in 0..<counts[0] {
            let questionName = try readName()
            message.questions.append(DNSQuestion(name: questionName, type: DNSType(rawValue: try u16()), recordClass: try u16()))
        }
        for _ in 0..<counts[1] { message.answers.append(try record()) }
        for _ in 0..<counts[2] { message.authorities.append(try record()) }
        for _ in 0..<counts[3] {
            let entry = try record()
            if entry.type == .opt {
                guard message.edns == nil else { throw fail("more than one OPT record") }
                guard entry.name == .root else { throw fail("OPT record must have the root name") }
                message.edns = EDNS(
                    udpPayloadSize: entry.recordClass, version: UInt8((entry.ttl >> 16) & 0xFF), dnssecOK: entry.ttl & 0x8000 != 0)
            } else {
                message.additionals.append(entry)
            }
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) bytes follow the last record") }
        return message
    }

    mutating func record() throws(DNSWireError) -> DNSRecord {
        let owner = try readName()
        let type = DNSType(rawValue: try u16())
        let recordClass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        let end = offset + length
        guard end <= bytes.count else { throw fail("record data runs past the end of the message") }
        let data: RecordData
        switch type {
        case .a:
            guard length == 4 else { throw fail("A record data must be 4 bytes, found \(length)") }
            data = .a(IPAddress(bytes: try take(4)))
        case .aaaa:
            guard length == 16 else { throw fail("AAAA record data must be 16 bytes, found \(length)") }
            data = .aaaa(IPAddress(bytes: try take(16)))
        case .cname: data = .cname(try readName())
        case .ns: data = .ns(try readName())
        case .ptr: data = .ptr(try readName())
        case .soa:
            let primary = try readName()
            let mailbox = try readName()
            data = .soa(
                SOAData(
                    primary: primary, mailbox: mailbox, serial: try u32(), refresh: try u32(), retry: try u32(), expire: try u32(),
                    minimum: try u32()))
        case .srv:
            let priority = try u16()
            let weight = try u16()
            let port = try u16()
            data = .srv(priority: priority, weight: weight, port: port, target: try readName())
        default:
            data = .other(try take(length))
        }
        guard offset == end else { throw fail("\(type) record data length \(length) does not match its content") }
        return DNSRecord(name: owner, type: type, recordClass: recordClass, ttl: ttl, data: data)
    }
}
