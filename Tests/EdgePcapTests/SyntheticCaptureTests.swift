import EdgeModel
import EdgePcap
import Foundation
import Testing

/// Captures edgesim writes itself (pcapng; packets made from what a relay carried): libpcap
/// and tshark read them, with correct checksums, and they decode back to what was carried.
@Suite final class SyntheticCaptureTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pcap-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    let client = Endpoint(IPAddress("127.18.10.1")!, 40_000)
    let server = Endpoint(IPAddress("127.19.0.1")!, 7)

    /// 100 KB one way, 3 bytes back, both ends closed; and two datagrams each way.
    func write(filter: String? = nil) throws -> (path: String, sent: [UInt8], summary: LiveCapture.Summary) {
        let path = folder.appendingPathComponent("synthetic.pcapng").path
        let capture = try SyntheticCapture(file: path, filter: filter)
        let sent = (0..<100_000).map { UInt8($0 % 251) }
        let connection = capture.tcp(client: client, server: server)
        connection.data(fromClient: true, sent[..<30_000])
        connection.data(fromClient: false, Array("ok\n".utf8))
        connection.data(fromClient: true, sent[30_000...])
        connection.end(fromClient: true)
        connection.end(fromClient: false)
        connection.end(fromClient: false)  // said twice, written once
        let dns = Endpoint(IPAddress("127.53.0.53")!, 53)
        capture.udp(from: client, to: dns, payload: [1, 2, 3])
        capture.udp(from: dns, to: client, payload: [4, 5, 6, 7])
        return (path, sent, capture.stop())
    }

    @Test func whatWasCarriedComesBackAsFlows() throws {
        let (path, sent, summary) = try write()
        let capture = try Capture(file: path)
        #expect(capture.format == "pcapng")
        #expect(capture.linkTypeDescription == "Raw IP")
        #expect(capture.records == summary.packets)
        #expect(capture.problems.isEmpty)
        #expect(capture.flows.count == 2)
        let tcp = try #require(capture.flows.first { $0.transport == .tcp })
        #expect(tcp.client == client && tcp.clientFrom == "it sent the SYN")
        #expect(tcp.sent.flatMap(\.bytes) == sent)
        #expect(tcp.replies.flatMap(\.bytes) == Array("ok\n".utf8))
        #expect(tcp.ending == .closed)
        // The reply sits between the two sends, as it was carried.
        #expect(tcp.messages.map(\.direction) == [.toServer, .toClient, .toServer, .toServer])
        let udp = try #require(capture.flows.first { $0.transport == .udp })
        #expect(udp.sent.map(\.bytes) == [[1, 2, 3]] && udp.replies.map(\.bytes) == [[4, 5, 6, 7]])
    }

    @Test func aFilterKeepsOnlyWhatMatches() throws {
        let (path, _, summary) = try write(filter: "udp")
        #expect(summary.packets == 2)
        #expect(try Capture(file: path).flows.map(\.transport) == [.udp])
        #expect(throws: PcapError.self) { try SyntheticCapture(file: self.folder.appendingPathComponent("x").path, filter: "port") }
    }

    @Test func tsharkFindsEveryChecksumRight() throws {
        guard let tshark = ["/usr/bin/tshark"].first(where: FileManager.default.isExecutableFile) else {
            print("skipped: tshark is not installed (scripts/setup installs it)")
            return
        }
        let (path, _, summary) = try write()
        func count(_ filter: String) throws -> Int {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tshark)
            process.arguments = [
                "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-Y", filter,
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = try output.fileHandleForReading.readAll()
            process.waitUntilExit()
            return String(decoding: text, as: UTF8.self).split(separator: "\n").count
        }
        #expect(try count("ip") == summary.packets)
        // Status 1 is "good" in Wireshark's checksum fields.
        #expect(try count("ip.checksum.status == 1") == summary.packets)
        #expect(try count("tcp.checksum.status == 1") == summary.packets - 2)
        #expect(try count("udp.checksum.status == 1") == 2)
        #expect(try count("tcp.analysis.flags && !tcp.analysis.window_update") == 0, "no retransmission, gap or bad sequence")
    }

    @Test func aSizeLimitStopsWritingAndCountsWhatWasLeftOut() throws {
        let path = folder.appendingPathComponent("small.pcapng").path
        let writer = try PcapngWriter(path: path, linkType: 101, interface: "test", limit: 100)
        let packet = [UInt8](repeating: 0x45, count: 60)
        writer.write(nanoseconds: 1_700_000_000_000_000_000, packet: packet)
        writer.write(nanoseconds: 1_700_000_000_000_000_001, packet: packet)
        writer.flush()
        #expect(writer.packets == 1 && writer.overLimit == 1)
        let read = try PcapReader(file: path).readAll()
        #expect(read.map(\.data) == [packet])
        #expect(abs(read[0].timestamp - 1_700_000_000) < 1e-6)
    }
}
