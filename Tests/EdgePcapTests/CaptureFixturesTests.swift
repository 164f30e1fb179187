import EdgeModel
import EdgePcap
import Foundation
import Testing

/// The captures in scenarios/captures, recorded from real traffic by scripts/record-captures:
/// one per link type and format edgesim reads, each decoded to the flows that were sent.
@Suite struct CaptureFixturesTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios/captures")

    static func read(_ name: String, filter: String? = nil) throws -> Capture {
        try Capture(file: folder.appendingPathComponent(name).path, options: .init(filter: filter))
    }

    static func text(_ messages: [CapturedFlow.Message]) -> String {
        String(decoding: messages.flatMap(\.bytes), as: UTF8.self)
    }

    /// What scripts/record-captures' echo client sends: three lines, each echoed.
    static let echoed = "hello edge\n" + String(repeating: "x", count: 3000) + "\n" + "goodbye\n"

    @Test(arguments: [
        ("echo-tcp.pcap", "LINUX_SLL"), ("echo-tcp-null.pcap", "NULL"), ("echo-tcp-loop.pcap", "LOOP"),
    ])
    func theSameTCPDialogueUnderEveryLinkType(file: String, linkType: String) throws {
        let capture = try Self.read(file)
        #expect(capture.linkTypeName == linkType)
        #expect(capture.problems.isEmpty)
        #expect(capture.flows.count == 1)
        let flow = try #require(capture.flows.first)
        #expect(flow.transport == .tcp)
        #expect(flow.client.address == IPAddress("198.18.10.1"))
        #expect(flow.server.port == 7)
        #expect(flow.clientFrom == "it sent the SYN")
        #expect(flow.ending == .closed)
        #expect(Self.text(flow.sent) == Self.echoed)
        #expect(Self.text(flow.replies) == Self.echoed)
    }

    /// Ethernet from lo, and the same packets with an 802.1Q tag and with 802.1ad + 802.1Q (a
    /// capture filter must say `vlan` once a tag, as with tcpdump).
    @Test(arguments: [
        ("echo-udp-loopback.pcap", "host 127.19.0.2"), ("vlan-udp.pcap", "vlan and host 127.19.0.2"),
        ("qinq-udp.pcap", "vlan and vlan and host 127.19.0.2"),
    ])
    func udpThroughEthernetWithAndWithoutVLANTags(file: String, filter: String) throws {
        let capture = try Self.read(file, filter: filter)
        #expect(capture.linkTypeName == "EN10MB")
        let flow = try #require(capture.flows.first)
        #expect(capture.flows.count == 1)
        #expect(flow.transport == .udp)
        #expect(flow.sent.count == 5)
        #expect(flow.sent.map(\.bytes) == flow.replies.map(\.bytes))
        #expect(flow.sent.map { String(decoding: $0.bytes.prefix(10), as: UTF8.self) } == (0..<5).map { "datagram \($0)" })
        // Without the filter every hop on lo is a flow of its own.
        #expect(try Self.read(file).flows.count == 4)
    }

    @Test func ipv6TCPAndUDPInLinuxCookedV2() throws {
        let capture = try Self.read("echo-ipv6.pcap")
        #expect(capture.linkTypeName == "LINUX_SLL2")
        #expect(capture.flows.map(\.transport) == [.tcp, .udp])
        #expect(capture.flows.allSatisfy { !$0.client.address.isIPv4 && $0.client.address == IPAddress("2001:db8:1:10::1") })
        #expect(Self.text(capture.flows[0].sent) == Self.echoed)
        #expect(capture.flows[1].replies.count == 5)
    }

    @Test func anSMTPDialogueFromPcapng() throws {
        let capture = try Self.read("smtp.pcapng")
        #expect(capture.format == "pcapng")
        let flow = try #require(capture.flows.first)
        #expect(flow.server.port == 25)
        let client = Self.text(flow.sent)
        let server = Self.text(flow.replies)
        #expect(client.hasPrefix("ehlo paris.hosts.edgesim.test\r\n") || client.hasPrefix("EHLO paris.hosts.edgesim.test\r\n"))
        #expect(client.contains("Subject: replayed"))
        #expect(client.lowercased().hasSuffix("quit\r\n"))
        #expect(server.hasPrefix("220 "))
        #expect(server.hasSuffix("\r\n") && server.split(separator: "\r\n").last?.hasPrefix("221") == true)
    }

    @Test func dnsOverUDPAndTCPFromRawIP() throws {
        let capture = try Self.read("dns-dig.pcap")
        #expect(capture.linkTypeDescription == "Raw IP")
        #expect(capture.flows.map(\.transport) == [.udp, .udp, .udp, .udp, .tcp])
        for flow in capture.flows where flow.transport == .udp {
            // Each answer carries its query's ID.
            #expect(flow.sent.first?.bytes.prefix(2) == flow.replies.first?.bytes.prefix(2))
        }
        let tcp = capture.flows[4]
        // DNS over TCP: a two-byte length, then the message.
        let query = tcp.sent.flatMap(\.bytes)
        #expect(Int(query[0]) << 8 | Int(query[1]) == query.count - 2)
    }

    @Test func anHTTPExchangeFromRawIP() throws {
        let flow = try #require(try Self.read("http.pcap").flows.first)
        #expect(Self.text(flow.sent).hasPrefix("GET /replayed?from=paris HTTP/1.1\r\n"))
        #expect(Self.text(flow.replies).hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    /// tshark, an independent decoder, finds the same conversations with the same packet counts.
    @Test(arguments: [
        "dns-dig.pcap", "echo-ipv6.pcap", "echo-tcp.pcap", "echo-tcp-null.pcap", "echo-tcp-loop.pcap", "echo-udp-loopback.pcap",
        "http.pcap", "qinq-udp.pcap", "smtp.pcapng", "vlan-udp.pcap",
    ])
    func tsharkAgrees(file: String) throws {
        guard let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: FileManager.default.isExecutableFile) else {
            print("skipped: tshark is not installed (scripts/setup installs it)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-r", Self.folder.appendingPathComponent(file).path, "-q", "-z", "conv,tcp", "-z", "conv,udp"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
        process.waitUntilExit()
        // "A <-> B  frames(B→A) N bytes  frames(A→B) N bytes  total ...": endpoints and frames each way.
        var theirs: Set<String> = []
        for line in text.split(separator: "\n") where line.contains("<->") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            theirs.insert("\(fields[0]) \(fields[2]) \(fields[6]) \(fields[3])")
        }
        let capture = try Self.read(file)
        var ours: Set<String> = []
        for flow in capture.flows {
            func name(_ endpoint: Endpoint) -> String { "\(endpoint.address):\(endpoint.port)" }
            // tshark puts first whichever address it saw first; either order is the same conversation.
            ours.insert("\(name(flow.client)) \(name(flow.server)) \(flow.packetsToServer) \(flow.packetsToClient)")
            ours.insert("\(name(flow.server)) \(name(flow.client)) \(flow.packetsToClient) \(flow.packetsToServer)")
        }
        #expect(!theirs.isEmpty)
        #expect(theirs.isSubset(of: ours), "tshark: \(theirs.sorted()), edgesim: \(ours.sorted())")
        #expect(theirs.count == capture.flows.count)
    }
}
