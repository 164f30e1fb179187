import EdgeModel
import NIOCore

extension ByteBuffer {
    /// Writes `message` with name compression. When it would exceed `maxSize`, writes the header
    /// and question only, with TC set, so the client retries over TCP; when even those do not fit
    /// (many or long questions), the header alone. Never more than `maxSize` bytes (at least 12).
    /// Returns whether it truncated.
    @discardableResult
    public mutating func writeDNSMessage(_ message: DNSMessage, maxSize: Int = 65535) -> Bool {
        var writer = DNSWriter(start: writerIndex)
        writer.write(message, into: &self)
        guard writerIndex - writer.start > maxSize else { return false }
        moveWriterIndex(to: writer.start)
        var cut = message
        cut.truncated = true
        cut.answers = []
        cut.authorities = []
        cut.additionals = []
        var again = DNSWriter(start: writerIndex)
        again.write(cut, into: &self)
        guard writerIndex - again.start > maxSize else { return true }
        moveWriterIndex(to: again.start)
        cut.questions = []
        cut.edns = nil
        var header = DNSWriter(start: writerIndex)
        header.write(cut, into: &self)
        return true
    }
}

struct DNSWriter {
    let start: Int
    /// Names already written and where each of their labels stands, for compression pointers.
    /// A message holds a handful of names, so a linear search beats hashing.
    private var written: [(name: DNSName, offsets: [Int])] = []

    init(start: Int) {
        self.start = start
    }

    mutating func write(_ message: DNSMessage, into buffer: inout ByteBuffer) {
        var flags: UInt16 = 0
        if message.isResponse { flags |= 0x8000 }
        flags |= UInt16(message.opcode & 0xF) << 11
        if message.authoritative { flags |= 0x0400 }
        if message.truncated { flags |= 0x0200 }
        if message.recursionDesired { flags |= 0x0100 }
        if message.recursionAvailable { flags |= 0x0080 }
        flags |= UInt16(message.responseCode.rawValue)
        buffer.writeInteger(message.id)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(message.questions.count))
        buffer.writeInteger(UInt16(message.answers.count))
        buffer.writeInteger(UInt16(message.authorities.count))
        buffer.writeInteger(UInt16(message.additionals.count + (message.edns == nil ? 0 : 1)))
        for question in message.questions {
            name(question.name, into: &buffer)
            buffer.writeInteger(question.type.rawValue)
            buffer.writeInteger(question.recordClass)
        }
        for record in message.answers + message.authorities + message.additionals { write(record, into: &buffer) }
        if let edns = message.edns {
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(DNSType.opt.rawValue)
            buffer.writeInteger(edns.udpPayloadSize)
            buffer.writeInteger(UInt32(edns.version) << 16 | (edns.dnssecOK ? 0x8000 : 0))
            buffer.writeInteger(UInt16(0))
        }
    }

    mutating func name(_ name: DNSName, into buffer: inout ByteBuffer) {
        var offsets: [Int] = []
        defer { if !offsets.isEmpty { written.append((name, offsets)) } }
        for index in name.wireLabels.indices {
            if let offset = earlier(name, from: index) {
                buffer.writeInteger(UInt16(0xC000) | UInt16(offset))
                return
            }
            let here = buffer.writerIndex - start
            if here < 0x3FFF { offsets.append(here) }
            let label = name.wireLabels[index]
            buffer.writeInteger(UInt8(label.count))
            buffer.writeBytes(label)
        }
        buffer.writeInteger(UInt8(0))
    }

    /// Where the labels of `name` from `index` on were already written, if anywhere.
    private func earlier(_ name: DNSName, from index: Int) -> Int? {
        for (previous, offsets) in written {
            let start = previous.wireLabels.count - (name.wireLabels.count - index)
            guard start >= 0, start < offsets.count, name.suffix(from: index, equals: previous, from: start) else { continue }
            return offsets[start]
        }
        return nil
    }

    mutating func write(_ record: DNSRecord, into buffer: inout ByteBuffer) {
        name(record.name, into: &buffer)
        buffer.writeInteger(record.type.rawValue)
        buffer.writeInteger(record.recordClass)
        buffer.writeInteger(record.ttl)
        let lengthAt = buffer.writerIndex
        buffer.writeInteger(UInt16(0))
        switch record.data {
        case .a(let address), .aaaa(let address): buffer.writeBytes(address.bytes)
        case .cname(let target), .ns(let target), .ptr(let target): name(target, into: &buffer)
        case .soa(let soa):
            name(soa.primary, into: &buffer)
            name(soa.mailbox, into: &buffer)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { buffer.writeInteger(value) }
        case .srv(let priority, let weight, let port, let target):
            buffer.writeInteger(priority)
            buffer.writeInteger(weight)
            buffer.writeInteger(port)
            // RFC 2782: the target is not compressed.
            for label in target.wireLabels {
                buffer.writeInteger(UInt8(label.count))
                buffer.writeBytes(label)
            }
            buffer.writeInteger(UInt8(0))
        case .other(let bytes): buffer.writeBytes(bytes)
        }
        buffer.setInteger(UInt16(buffer.writerIndex - lengthAt - 2), at: lengthAt)
    }
}
