import EdgePcap
import Foundation
import Testing

@Suite final class PcapReaderTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pcap-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let url = folder.appendingPathComponent(name)
        try! Data(bytes).write(to: url)
        return url.path
    }

    /// An IPv4/UDP packet from 198.18.1.1:5000 to 198.19.0.1:53 carrying `payload` (raw IP link type).
    func udpPacket(_ payload: [UInt8]) -> [UInt8] {
        let total = 20 + 8 + payload.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 1, 1, 198, 19, 0, 1]
        var sum = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += Int(ip[i]) << 8 | Int(ip[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        ip[10] = UInt8((~sum >> 8) & 0xff)
        ip[11] = UInt8(~sum & 0xff)
        let udpLength = 8 + payload.count
        return ip + [0x13, 0x88, 0, 53, UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0] + payload
    }

    @Test func packetsWrittenAreReadBackThroughLibpcap() throws {
        let packets = [
            (timestamp: 1_700_000_000.25, data: udpPacket(Array("hello".utf8))),
            (timestamp: 1_700_000_001.5, data: udpPacket(Array("world!".utf8))),
        ]
        let path = write("two.pcap", PcapWriter.file(linkType: 101, packets: packets))
        let reader = try PcapReader(file: path)
        // The file says LINKTYPE_RAW (101); libpcap reports it as its DLT for raw IP.
        #expect(reader.linkTypeName == "RAW")
        let read = try reader.readAll()
        #expect(read.map(\.data) == packets.map(\.data))
        #expect(read.map(\.originalLength) == [33, 34])
        #expect(abs(read[0].timestamp - 1_700_000_000.25) < 1e-6)
        #expect(abs(read[1].timestamp - read[0].timestamp - 1.25) < 1e-6)
    }

    /// Classic pcap bytes: a header with `linkType` and `snap`, then records (captured, original, bytes).
    func capture(linkType: UInt32 = 101, snap: UInt32 = 65535, _ records: [(captured: UInt32, original: UInt32, bytes: [UInt8])]) -> [UInt8]
    {
        func le(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xff) } }
        var bytes = le(0xa1b2_c3d4) + [2, 0, 4, 0] + le(0) + le(0) + le(snap) + le(linkType)
        for record in records { bytes += le(1_700_000_000) + le(0) + le(record.captured) + le(record.original) + record.bytes }
        return bytes
    }

    /// Three captures that are broken in ways libpcap alone lets through or reports late: each
    /// is refused when read to the end, naming the record.
    @Test func everyRecordIsCheckedAgainstItsHeader() throws {
        let packet = udpPacket(Array("hello".utf8))
        let count = UInt32(packet.count)
        let good = capture([(count, count, packet), (count, count, packet)])
        #expect(try PcapReader(bytes: good, name: "good.pcap").verify() == 2)
        #expect(try PcapReader(file: write("good.pcap", good)).readAll().map(\.data) == [packet, packet])

        let longer = capture([(count, count, packet), (count, count - 5, packet)])
        #expect {
            try PcapReader(bytes: longer, name: "longer.pcap").verify()
        } throws: { error in
            (error as? PcapError)?.message == "record 2: 33 bytes captured of a 28-byte packet"
        }
        let truncated = Array(capture([(count, count, packet), (count, count, packet)]).dropLast(7))
        #expect {
            try PcapReader(bytes: truncated, name: "truncated.pcap").verify()
        } throws: { error in
            (error as? PcapError)?.message.hasPrefix("record 2: corrupt capture: truncated") == true
        }
        #expect {
            try PcapReader(bytes: capture(linkType: 4242, [(count, count, packet)]), name: "odd.pcap")
        } throws: { error in
            (error as? PcapError)?.message.contains("unknown link type") == true
        }
    }

    @Test func garbageIsRefusedWithTheReason() {
        let path = write("junk.pcap", Array("this is not a capture at all, just text".utf8))
        #expect {
            try PcapReader(file: path)
        } throws: { error in
            (error as? PcapError)?.message.contains("not a readable pcap or pcapng capture") == true
        }
    }

    @Test func missingFileIsRefused() {
        #expect(throws: PcapError.self) { try PcapReader(file: folder.appendingPathComponent("none.pcap").path) }
    }

    @Test func truncatedRecordIsAnErrorNotACrash() throws {
        let whole = PcapWriter.file(
            linkType: 101, packets: [(timestamp: 1, data: udpPacket([1, 2, 3])), (timestamp: 2, data: udpPacket([4, 5, 6]))])
        let path = write("cut.pcap", Array(whole.dropLast(10)))
        let reader = try PcapReader(file: path)
        #expect(try reader.next() != nil)
        #expect(throws: PcapError.self) { try reader.next() }
    }
}
