import EdgeModel

/// Turns capture records into TCP segments and UDP datagrams: link header, IPv4 or IPv6 (with
/// extension headers skipped and fragments reassembled), then the transport header. Pure: it
/// reads only the bytes it is given, and a record shorter than its headers claim is reported,
/// never read past.
public struct PacketDecoder: Sendable {
    public let link: LinkLayer
    private var fragments = FragmentReassembler()

    public init(link: LinkLayer) {
        self.link = link
    }

    /// At the end of a capture: the fragmented datagrams that never became whole, as problems.
    public mutating func finish() -> [String] {
        fragments.finish()
        return fragments.incomplete
    }

    public mutating func decode(_ packet: CapturedPacket, record: Int) -> DecodeResult {
        let frame = packet.data[...]
        let snapped = packet.data.count < packet.originalLength
        switch link.network(of: frame) {
        case .truncated(let what): return .malformed("record \(record) ends inside \(what)")
        case .other(let name): return .skipped(name)
        case .ipv4(let start): return ipv4(frame[start...], snapped: snapped, record: record, time: packet.timestamp)
        case .ipv6(let start): return ipv6(frame[start...], snapped: snapped, record: record, time: packet.timestamp)
        }
    }

    private mutating func ipv4(_ ip: ArraySlice<UInt8>, snapped: Bool, record: Int, time: Double) -> DecodeResult {
        guard ip.count >= 20 else { return .malformed("record \(record) ends inside its IPv4 header") }
        let headerLength = Int(ip[ip.startIndex] & 0x0f) * 4
        let total = Int(ip.uint16(at: 2))
        guard ip[ip.startIndex] >> 4 == 4, headerLength >= 20 else {
            return .malformed("record \(record): an IPv4 header of \(headerLength) bytes")
        }
        guard ip.count >= headerLength else { return .malformed("record \(record) ends inside its IPv4 options") }
        guard total >= headerLength else {
            return .malformed("record \(record): IPv4 total length \(total) is shorter than its \(headerLength)-byte header")
        }
        // Ethernet pads short frames: the IP length says where the packet ends.
        var body = ip[(ip.startIndex + headerLength)..<(ip.startIndex + min(total, ip.count))]
        var missing = 0
        if total > ip.count {
            guard snapped else {
                return .malformed("record \(record): its IPv4 header says \(total) bytes, the record holds \(ip.count)")
            }
            missing = total - ip.count
        }
        let source = IPAddress(bytes: ip[(ip.startIndex + 12)..<(ip.startIndex + 16)])
        let destination = IPAddress(bytes: ip[(ip.startIndex + 16)..<(ip.startIndex + 20)])
        let proto = ip[ip.startIndex + 9]
        let flags = ip.uint16(at: 6)
        let moreFragments = flags & 0x2000 != 0
        let offset = Int(flags & 0x1fff) * 8
        if moreFragments || offset > 0 {
            guard missing == 0 else { return .malformed("record \(record): a fragment cut short by the capture's snap length") }
            let key = FragmentReassembler.Key(
                source: source, destination: destination, identification: UInt32(ip.uint16(at: 4)), proto: proto)
            switch fragments.add(key, offset: offset, bytes: body, last: !moreFragments, time: time, record: record) {
            case .waiting: return .fragment
            case .invalid(let why): return .malformed("record \(record): \(why)")
            case .whole(let bytes): body = bytes[...]
            }
        }
        return transport(proto, body, source: source, destination: destination, missing: missing, record: record, time: time)
    }

    private mutating func ipv6(_ ip: ArraySlice<UInt8>, snapped: Bool, record: Int, time: Double) -> DecodeResult {
        guard ip.count >= 40 else { return .malformed("record \(record) ends inside its IPv6 header") }
        guard ip[ip.startIndex] >> 4 == 6 else {
            return .malformed("record \(record): IP version \(ip[ip.startIndex] >> 4) in an IPv6 frame")
        }
        let payloadLength = Int(ip.uint16(at: 4))
        guard payloadLength > 0 else { return .skipped("IPv6 jumbogram") }
        var missing = 0
        let end: Int
        if 40 + payloadLength > ip.count {
            guard snapped else {
                return .malformed("record \(record): its IPv6 header says \(40 + payloadLength) bytes, the record holds \(ip.count)")
            }
            missing = 40 + payloadLength - ip.count
            end = ip.endIndex
        } else {
            end = ip.startIndex + 40 + payloadLength
        }
        let source = IPAddress(bytes: ip[(ip.startIndex + 8)..<(ip.startIndex + 24)])
        let destination = IPAddress(bytes: ip[(ip.startIndex + 24)..<(ip.startIndex + 40)])
        var next = ip[ip.startIndex + 6]
        var at = ip.startIndex + 40
        var fragment: (offset: Int, last: Bool, identification: UInt32)?
        // Extension headers, at most a few dozen: each is at least 8 bytes.
        while true {
            switch next {
            case 0, 43, 60, 51:
                guard end - at >= 2 else { return .malformed("record \(record) ends inside an IPv6 extension header") }
                let length = next == 51 ? (Int(ip[at + 1]) + 2) * 4 : (Int(ip[at + 1]) + 1) * 8
                guard end - at >= length else { return .malformed("record \(record) ends inside an IPv6 extension header") }
                next = ip[at]
                at += length
            case 44:
                guard end - at >= 8 else { return .malformed("record \(record) ends inside an IPv6 fragment header") }
                let field = ip[at...].uint16(at: 2)
                fragment = (Int(field & 0xfff8), field & 1 == 0, ip[at...].uint32(at: 4))
                next = ip[at]
                at += 8
            case 50: return .skipped("IPv6 ESP")
            case 59: return .skipped("IPv6 without payload")
            default:
                var body = ip[at..<end]
                if let fragment {
                    guard missing == 0 else { return .malformed("record \(record): a fragment cut short by the capture's snap length") }
                    if fragment.offset > 0 || !fragment.last {
                        let key = FragmentReassembler.Key(
                            source: source, destination: destination, identification: fragment.identification, proto: next)
                        switch fragments.add(key, offset: fragment.offset, bytes: body, last: fragment.last, time: time, record: record) {
                        case .waiting: return .fragment
                        case .invalid(let why): return .malformed("record \(record): \(why)")
                        case .whole(let bytes): body = bytes[...]
                        }
                    }
                }
                return transport(next, body, source: source, destination: destination, missing: missing, record: record, time: time)
            }
        }
    }

    private func transport(
        _ proto: UInt8, _ segment: ArraySlice<UInt8>, source: IPAddress, destination: IPAddress, missing: Int, record: Int, time: Double
    ) -> DecodeResult {
        switch proto {
        case 6:
            guard segment.count >= 20 else { return .malformed("record \(record) ends inside its TCP header") }
            let headerLength = Int(segment[segment.startIndex + 12] >> 4) * 4
            guard headerLength >= 20 else { return .malformed("record \(record): a TCP header of \(headerLength) bytes") }
            guard segment.count >= headerLength else { return .malformed("record \(record) ends inside its TCP options") }
            let header = DecodedPacket.TCPHeader(
                sequence: segment.uint32(at: 4), acknowledgment: segment.uint32(at: 8), flags: segment[segment.startIndex + 13])
            return .packet(
                DecodedPacket(
                    record: record, timestamp: time, transport: .tcp, source: Endpoint(source, segment.uint16(at: 0)),
                    destination: Endpoint(destination, segment.uint16(at: 2)), tcp: header,
                    payload: Array(segment[(segment.startIndex + headerLength)...]), missing: missing))
        case 17:
            guard segment.count >= 8 else { return .malformed("record \(record) ends inside its UDP header") }
            let length = Int(segment.uint16(at: 4))
            guard length >= 8 else { return .malformed("record \(record): a UDP length of \(length)") }
            let available = segment.count - 8
            let claimed = length - 8
            guard claimed <= available || missing > 0 else {
                return .malformed("record \(record): its UDP header says \(length) bytes, the packet holds \(segment.count)")
            }
            return .packet(
                DecodedPacket(
                    record: record, timestamp: time, transport: .udp, source: Endpoint(source, segment.uint16(at: 0)),
                    destination: Endpoint(destination, segment.uint16(at: 2)), tcp: nil,
                    payload: Array(segment[(segment.startIndex + 8)..<(segment.startIndex + 8 + min(claimed, available))]),
                    missing: max(0, claimed - available)))
        case 1: return .skipped("ICMP")
        case 58: return .skipped("ICMPv6")
        default: return .skipped("IP protocol \(proto)")
        }
    }
}
