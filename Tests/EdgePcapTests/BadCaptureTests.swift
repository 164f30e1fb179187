import EdgePcap
import Foundation
import Testing

/// Captures broken in every way the replay reads them: each is an error naming the file (and the
/// record, where there is one), never a crash and never a huge allocation.
@Suite struct BadCaptureTests {
    typealias P = PacketBuilder

    static let packet = P.ipv4("198.18.10.1", "198.19.0.1", proto: 17, P.udp(from: 5000, to: 7, Array("hello".utf8)))

    /// Classic pcap bytes with the header fields given, then records (captured, original, bytes).
    static func file(snap: UInt32 = 65535, linkType: UInt32 = 101, _ records: [(UInt32, UInt32, [UInt8])]) -> [UInt8] {
        func le(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xff) } }
        var bytes = le(0xa1b2_c3d4) + [2, 0, 4, 0] + le(0) + le(0) + le(snap) + le(linkType)
        for record in records { bytes += le(1_700_000_000) + le(0) + le(record.0) + le(record.1) + record.2 }
        return bytes
    }

    func refusal(_ bytes: [UInt8], name: String = "bad.pcap") -> String? {
        do {
            _ = try Capture(bytes: bytes, name: name)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func anEmptyFile() throws {
        let message = try #require(refusal([], name: "empty.pcap"))
        #expect(message.hasPrefix("empty.pcap: not a readable pcap or pcapng capture"), "\(message)")
    }

    @Test func badMagic() throws {
        let message = try #require(refusal([0xde, 0xad, 0xbe, 0xef] + Array(Self.file([]).dropFirst(4)), name: "magic.pcap"))
        #expect(message.hasPrefix("magic.pcap: not a readable pcap or pcapng capture"), "\(message)")
        #expect(message.contains("unknown file format"), "\(message)")
    }

    @Test func aRecordClaimingMoreThanItsPacket() throws {
        let count = UInt32(Self.packet.count)
        let message = try #require(refusal(Self.file([(count, count, Self.packet), (count, count - 1, Self.packet)])))
        #expect(message == "bad.pcap: record 2: 33 bytes captured of a 32-byte packet")
    }

    /// libpcap cuts a record longer than the snap length down to it; what is left is too short
    /// for its UDP header, and reported as such.
    @Test func aRecordOverTheSnapLength() throws {
        let count = UInt32(Self.packet.count)
        let capture = try Capture(bytes: Self.file(snap: 20, [(count, count, Self.packet)]), name: "snap.pcap")
        #expect(capture.flows.isEmpty)
        #expect(capture.problems == ["record 1 ends inside its UDP header"])
    }

    /// A header saying 4 GiB a packet, and a record claiming 2 GiB captured: libpcap caps the one
    /// and refuses the other before reading a byte of it.
    @Test func absurdLengths() throws {
        let count = UInt32(Self.packet.count)
        let hugeSnap = Self.file(snap: 0xffff_ffff, [(count, count, Self.packet)])
        #expect(try Capture(bytes: hugeSnap, name: "snap.pcap").flows.count == 1)
        let zeroSnap = Self.file(snap: 0, [(count, count, Self.packet)])
        #expect(try Capture(bytes: zeroSnap, name: "snap0.pcap").flows.count == 1)
        let message = try #require(refusal(Self.file(snap: 0xffff_ffff, [(0x7fff_ffff, 0x7fff_ffff, Self.packet)])))
        #expect(message.hasPrefix("bad.pcap: record 1: corrupt capture:"), "\(message)")
        #expect(message.contains("2147483647"), "\(message)")
    }

    @Test func aFileCutInsideARecord() throws {
        let count = UInt32(Self.packet.count)
        let whole = Self.file([(count, count, Self.packet), (count, count, Self.packet)])
        let message = try #require(refusal(Array(whole.dropLast(5))))
        #expect(message.hasPrefix("bad.pcap: record 2: corrupt capture: truncated"), "\(message)")
        let headerOnly = Array(whole.prefix(30))
        #expect(try #require(refusal(headerOnly)).hasPrefix("bad.pcap: record 1: corrupt capture: truncated"))
    }

    @Test func linkTypesEdgesimDoesNotDecode() throws {
        let count = UInt32(Self.packet.count)
        // 802.11 is known to libpcap but not decoded here; 4242 is known to nobody.
        let wifi = try #require(refusal(Self.file(linkType: 105, [(count, count, Self.packet)])))
        #expect(wifi.hasPrefix("bad.pcap: link type IEEE802_11 (105) is not one edgesim decodes"), "\(wifi)")
        let unknown = try #require(refusal(Self.file(linkType: 4242, [(count, count, Self.packet)])))
        #expect(unknown.contains("unknown link type"), "\(unknown)")
    }

    @Test func aBadFilterIsRefusedWithLibpcapsReason() throws {
        let bytes = Self.file([(UInt32(Self.packet.count), UInt32(Self.packet.count), Self.packet)])
        #expect {
            try Capture(bytes: bytes, name: "f.pcap", options: .init(filter: "port banana"))
        } throws: { error in
            (error as? PcapError)?.message.hasPrefix("filter 'port banana' is not a valid capture filter:") == true
        }
    }

    /// Records whose headers lie are problems with their numbers; the good ones around them
    /// still make their flows.
    @Test func malformedRecordsAreListedAndTheRestIsUsed() throws {
        let good = Self.packet
        var liar = Self.packet
        liar[3] = 200  // IPv4 total length 200 in a 33-byte record
        let count = UInt32(good.count)
        let capture = try Capture(bytes: Self.file([(count, count, good), (count, count, liar), (count, count, good)]), name: "mixed.pcap")
        #expect(capture.problems == ["record 2: its IPv4 header says 200 bytes, the record holds 33"])
        #expect(capture.flows.first?.sent.count == 2)
    }
}
