import EdgeModel
import EdgePcap
import Testing

@Suite struct PacketDecoderTests {
    typealias P = PacketBuilder

    func decode(_ frame: [UInt8], link: LinkLayer = .raw, original: Int? = nil) -> DecodeResult {
        var decoder = PacketDecoder(link: link)
        return decoder.decode(CapturedPacket(timestamp: 1, originalLength: original ?? frame.count, data: frame), record: 7)
    }

    func packet(_ result: DecodeResult) -> DecodedPacket? {
        if case .packet(let packet) = result { return packet }
        return nil
    }

    @Test func anIPv4TCPSegmentIsReadWithItsHeaderFields() throws {
        let segment = P.tcp(from: 40000, to: 7, seq: 1000, ack: 5, flags: 0x18, Array("hello".utf8))
        let decoded = try #require(packet(decode(P.ipv4("198.18.10.1", "198.19.0.1", proto: 6, segment))))
        #expect(decoded.transport == .tcp)
        #expect(decoded.source == Endpoint(IPAddress("198.18.10.1")!, 40000))
        #expect(decoded.destination == Endpoint(IPAddress("198.19.0.1")!, 7))
        #expect(decoded.tcp == DecodedPacket.TCPHeader(sequence: 1000, acknowledgment: 5, flags: 0x18))
        #expect(decoded.payload == Array("hello".utf8))
        #expect(decoded.record == 7)
    }

    @Test func ethernetPaddingIsNotPayload() throws {
        // A 1-byte UDP payload in a minimum-size frame: the IP length says where the packet ends.
        let ip = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, P.udp(from: 5000, to: 53, [0x42]))
        let decoded = try #require(packet(decode(P.ethernet(ip + [UInt8](repeating: 0, count: 17)), link: .ethernet)))
        #expect(decoded.payload == [0x42])
    }

    @Test func vlanTagsAreSkippedOneOrTwoDeep() throws {
        let ip = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, P.udp(from: 5000, to: 53, [1, 2, 3]))
        for tags: [UInt16] in [[0x8100], [0x88a8, 0x8100], [0x9100, 0x8100]] {
            let decoded = try #require(packet(decode(P.ethernet(ip, tags: tags), link: .ethernet)))
            #expect(decoded.payload == [1, 2, 3])
        }
    }

    @Test func ipv6ExtensionHeadersAreSkipped() throws {
        let body = P.udp(from: 5000, to: 7, Array("six".utf8))
        let ip = P.ipv6("2001:db8:1::1", "2001:db8:a::1", proto: 17, body, extensions: [(0, P.optionsHeader), (60, P.optionsHeader)])
        let decoded = try #require(packet(decode(ip)))
        #expect(decoded.source == Endpoint(IPAddress("2001:db8:1::1")!, 5000))
        #expect(decoded.payload == Array("six".utf8))
    }

    @Test func nonIPAndOtherProtocolsAreSkippedByName() {
        #expect(decode(P.ethernet([0, 1, 8, 0], type: 0x0806), link: .ethernet) == .skipped("ARP"))
        #expect(decode(P.ipv4("198.18.10.1", "198.19.0.1", proto: 1, [8, 0, 0, 0])) == .skipped("ICMP"))
        #expect(decode(P.ipv6("2001:db8::1", "2001:db8::2", proto: 58, [128, 0, 0, 0])) == .skipped("ICMPv6"))
    }

    /// Each record shorter than one of its headers says is reported with its number.
    @Test func recordsShorterThanTheirHeadersAreReportedNotRead() {
        let full = P.ipv4("198.18.10.1", "198.19.0.1", proto: 6, P.tcp(from: 1, to: 2, seq: 0, flags: 0x02, [1, 2, 3, 4]))
        let cutTCP = P.ipv4("198.18.10.1", "198.19.0.1", proto: 6, Array(P.tcp(from: 1, to: 2, seq: 0, flags: 0x02).prefix(10)))
        #expect(decode(cutTCP) == .malformed("record 7 ends inside its TCP header"))
        #expect(decode(Array(full.prefix(12))) == .malformed("record 7 ends inside its IPv4 header"))
        #expect(decode(Array(full.prefix(42))) == .malformed("record 7: its IPv4 header says 44 bytes, the record holds 42"))
        #expect(decode([0x45]) == .malformed("record 7 ends inside its IPv4 header"))
        #expect(decode([0x02, 0, 0], link: .null) == .malformed("record 7 ends inside a loopback header"))
        #expect(
            decode([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81], link: .ethernet) == .malformed("record 7 ends inside an Ethernet header"))
        let udp = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, P.udp(from: 1, to: 2, [1, 2], length: 50))
        #expect(decode(udp) == .malformed("record 7: its UDP header says 50 bytes, the packet holds 10"))
        let v6 = P.ipv6("2001:db8::1", "2001:db8::2", proto: 17, P.udp(from: 1, to: 2, [1]), extensions: [(0, P.optionsHeader)])
        #expect(decode(Array(v6.prefix(45))) == .malformed("record 7: its IPv6 header says 57 bytes, the record holds 45"))
    }

    /// A record cut by the capture's snap length is not malformed: what was captured is kept and
    /// the rest counted as missing.
    @Test func aSnappedRecordKeepsWhatWasCaptured() throws {
        let full = P.ipv4(
            "198.18.10.1", "198.19.0.1", proto: 6, P.tcp(from: 1, to: 2, seq: 0, flags: 0x18, [UInt8](repeating: 9, count: 100)))
        let decoded = try #require(packet(decode(Array(full.prefix(60)), original: full.count)))
        #expect(decoded.payload.count == 20)
        #expect(decoded.missing == 80)
    }

    @Test func ipv4FragmentsInAnyOrderMakeOneDatagram() throws {
        let payload = (0..<3000).map { UInt8($0 % 251) }
        let datagram = P.udp(from: 5000, to: 7, payload)
        let pieces = [(0, 1480), (1480, 1480), (2960, datagram.count - 2960)].map { offset, length in
            P.ipv4(
                "198.18.10.1", "198.19.0.1", proto: 17, Array(datagram[offset..<(offset + length)]), id: 77,
                fragment: (offset, offset + length < datagram.count))
        }
        var decoder = PacketDecoder(link: .raw)
        var results: [DecodeResult] = []
        for (record, index) in [2, 0, 1].enumerated() {
            results.append(
                decoder.decode(CapturedPacket(timestamp: 1, originalLength: pieces[index].count, data: pieces[index]), record: record + 1))
        }
        #expect(results.prefix(2).allSatisfy { $0 == .fragment })
        let whole = try #require(packet(results[2]))
        #expect(whole.payload == payload)
        #expect(decoder.finish().isEmpty)
    }

    @Test func ipv6FragmentsAreReassembledAndIncompleteOnesReported() throws {
        let payload = Array(repeating: UInt8(7), count: 2000)
        let datagram = P.udp(from: 5000, to: 7, payload)
        let first = P.ipv6(
            "2001:db8::1", "2001:db8::2", proto: 17, Array(datagram[0..<1232]),
            extensions: [(44, P.fragmentHeader(offset: 0, more: true, id: 9))])
        let second = P.ipv6(
            "2001:db8::1", "2001:db8::2", proto: 17, Array(datagram[1232...]),
            extensions: [(44, P.fragmentHeader(offset: 1232, more: false, id: 9))])
        var decoder = PacketDecoder(link: .raw)
        #expect(decoder.decode(CapturedPacket(timestamp: 1, originalLength: first.count, data: first), record: 1) == .fragment)
        let whole = try #require(
            packet(decoder.decode(CapturedPacket(timestamp: 1, originalLength: second.count, data: second), record: 2)))
        #expect(whole.payload == payload)
        // A lone first piece of another datagram never becomes whole: reported at the end.
        let lone = P.ipv6(
            "2001:db8::1", "2001:db8::2", proto: 17, Array(datagram[0..<1232]),
            extensions: [(44, P.fragmentHeader(offset: 0, more: true, id: 10))])
        #expect(decoder.decode(CapturedPacket(timestamp: 2, originalLength: lone.count, data: lone), record: 3) == .fragment)
        #expect(decoder.finish() == ["record 3: a fragmented datagram from 2001:db8::1 to 2001:db8::2 (id 10) never became whole"])
    }

    @Test func aFragmentPastTheLargestDatagramIsMalformed() {
        let piece = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, [UInt8](repeating: 0, count: 16), id: 3, fragment: (65528, false))
        #expect(decode(piece) == .malformed("record 7: a fragment reaching past 65,535 bytes"))
    }

    @Test func loopbackHeadersInEitherByteOrder() throws {
        let ip = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, P.udp(from: 1, to: 2, [5]))
        let v6 = P.ipv6("2001:db8::1", "2001:db8::2", proto: 17, P.udp(from: 1, to: 2, [6]))
        #expect(packet(decode([2, 0, 0, 0] + ip, link: .null))?.payload == [5])  // little-endian host
        #expect(packet(decode([0, 0, 0, 2] + ip, link: .null))?.payload == [5])  // big-endian host
        #expect(packet(decode([30, 0, 0, 0] + v6, link: .null))?.payload == [6])  // macOS AF_INET6
        #expect(packet(decode([0, 0, 0, 24] + v6, link: .loop))?.payload == [6])
        #expect(decode([0, 0, 0, 99] + ip, link: .loop) == .skipped("address family 99"))
    }
}
