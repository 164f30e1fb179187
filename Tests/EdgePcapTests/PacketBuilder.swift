import EdgeModel
import EdgePcap

/// Builds packets byte by byte, as a sender's stack would, for decoder tests.
enum PacketBuilder {
    static func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xff), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] { (0..<4).reversed().map { UInt8((value >> (8 * UInt32($0))) & 0xff) } }

    static func tcp(from: UInt16, to: UInt16, seq: UInt32, ack: UInt32 = 0, flags: UInt8, _ payload: [UInt8] = []) -> [UInt8] {
        be16(Int(from)) + be16(Int(to)) + be32(seq) + be32(ack) + [0x50, flags] + be16(65535) + [0, 0, 0, 0] + payload
    }

    static func udp(from: UInt16, to: UInt16, _ payload: [UInt8], length: Int? = nil) -> [UInt8] {
        be16(Int(from)) + be16(Int(to)) + be16(length ?? 8 + payload.count) + [0, 0] + payload
    }

    /// An IPv4 packet; `fragment`: (offset in bytes, more fragments) with the datagram id.
    static func ipv4(
        _ source: String, _ destination: String, proto: UInt8, _ body: [UInt8], id: Int = 1, fragment: (offset: Int, more: Bool)? = nil,
        totalLength: Int? = nil
    ) -> [UInt8] {
        var flags = 0
        if let fragment { flags = (fragment.more ? 0x2000 : 0) | (fragment.offset / 8) }
        return [0x45, 0] + be16(totalLength ?? 20 + body.count) + be16(id) + be16(flags) + [64, proto, 0, 0]
            + IPAddress(source)!.bytes + IPAddress(destination)!.bytes + body
    }

    /// An IPv6 packet with optional extension headers (each `(type, bytes)` after the fixed header).
    static func ipv6(_ source: String, _ destination: String, proto: UInt8, _ body: [UInt8], extensions: [(UInt8, [UInt8])] = []) -> [UInt8]
    {
        var chain: [UInt8] = []
        let types = extensions.map(\.0) + [proto]
        for (index, ext) in extensions.enumerated() { chain += [types[index + 1]] + ext.1 }
        let first = extensions.first?.0 ?? proto
        return [0x60, 0, 0, 0] + be16(chain.count + body.count) + [first, 64] + IPAddress(source)!.bytes + IPAddress(destination)!.bytes
            + chain + body
    }

    /// A hop-by-hop or destination options header of 8 bytes (its next-header byte added by `ipv6`).
    static let optionsHeader: [UInt8] = [0, 1, 4, 0, 0, 0, 0]

    /// A fragment header's body (7 bytes after its next-header byte).
    static func fragmentHeader(offset: Int, more: Bool, id: UInt32) -> [UInt8] {
        [0] + be16(offset | (more ? 1 : 0)) + be32(id)
    }

    static func ethernet(_ packet: [UInt8], type: Int = 0x0800, tags: [UInt16] = []) -> [UInt8] {
        var frame: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]
        for (index, tpid) in tags.enumerated() { frame += be16(Int(tpid)) + be16(10 + index) }
        return frame + be16(type) + packet
    }

    /// A capture of raw IP packets (LINKTYPE_RAW) read back through libpcap.
    static func capture(_ packets: [[UInt8]], linkType: UInt32 = 101, start: Double = 1_700_000_000, step: Double = 0.001) throws -> Capture
    {
        let file = PcapWriter.file(
            linkType: linkType, packets: packets.enumerated().map { (timestamp: start + Double($0.offset) * step, data: $0.element) })
        return try Capture(bytes: file, name: "test.pcap")
    }
}
