import EdgeModel
import EdgePcap
import Testing

/// Flows put back together from packets as a capture holds them: out of order, twice, overlapping,
/// with holes, begun before the capture.
@Suite struct FlowTableTests {
    typealias P = PacketBuilder
    static let client = "198.18.10.1"
    static let server = "198.19.0.1"

    func toServer(_ seq: UInt32, _ text: String, flags: UInt8 = 0x18) -> [UInt8] {
        P.ipv4(Self.client, Self.server, proto: 6, P.tcp(from: 40000, to: 7, seq: seq, flags: flags, Array(text.utf8)))
    }

    func toClient(_ seq: UInt32, _ text: String, flags: UInt8 = 0x18) -> [UInt8] {
        P.ipv4(Self.server, Self.client, proto: 6, P.tcp(from: 7, to: 40000, seq: seq, flags: flags, Array(text.utf8)))
    }

    func text(_ flow: CapturedFlow, _ direction: CapturedFlow.Direction) -> String {
        String(decoding: flow.messages.filter { $0.direction == direction }.flatMap(\.bytes), as: UTF8.self)
    }

    @Test func aConnectionIsReassembledInOrderWithEachByteOnce() throws {
        let capture = try P.capture([
            toServer(99, "", flags: 0x02),  // SYN: the stream starts at 100
            toClient(499, "", flags: 0x12),  // SYN-ACK: 500
            toServer(106, "world "),  // early: held until 100-105 arrive
            toServer(100, "hello "),
            toServer(100, "hello "),  // retransmitted whole
            toServer(109, "ld and more"),  // overlaps "ld " already delivered
            toClient(500, "HELLO WORLD"),
            toServer(120, "", flags: 0x11),  // FIN
            toClient(511, "", flags: 0x11),
        ])
        #expect(capture.flows.count == 1)
        let flow = try #require(capture.flows.first)
        #expect(flow.client == Endpoint(IPAddress(Self.client)!, 40000))
        #expect(flow.clientFrom == "it sent the SYN")
        #expect(text(flow, .toServer) == "hello world and more")
        #expect(text(flow, .toClient) == "HELLO WORLD")
        #expect(flow.retransmissions == 1)
        #expect(flow.ending == .closed)
        #expect(flow.gaps.isEmpty)
        #expect(!flow.startedBeforeCapture)
        #expect(flow.packetsToServer == 6)
        #expect(flow.packetsToClient == 3)
    }

    @Test func aHoleIsSkippedAndReportedWithItsSize() throws {
        let capture = try P.capture([
            toServer(99, "", flags: 0x02),
            toServer(100, "abc"),
            toServer(110, "xyz"),  // 7 bytes (103-109) never captured
        ])
        let flow = try #require(capture.flows.first)
        #expect(text(flow, .toServer) == "abcxyz")
        #expect(flow.gaps == ["7 bytes to the server missing at offset 3"])
        #expect(capture.problems == ["tcp 198.18.10.1:40000 → 198.19.0.1:7: 7 bytes to the server missing at offset 3"])
    }

    @Test func aConnectionBegunBeforeTheCaptureStartsAtItsFirstSeenByte() throws {
        // No SYN: the lower port is taken as the server's, unless an application's port says otherwise.
        let capture = try P.capture([toClient(9000, "reply first"), toServer(7000, "then a request")])
        let flow = try #require(capture.flows.first)
        #expect(flow.server.port == 7)
        #expect(flow.startedBeforeCapture)
        #expect(text(flow, .toServer) == "then a request")
        #expect(flow.clientFrom == "no SYN seen; the lower port taken as the server's")

        let file = PcapWriter.file(linkType: 101, packets: [(1, toClient(9000, "x"))])
        let hinted = try Capture(bytes: file, name: "hint.pcap", options: .init(serverPorts: [40000]))
        #expect(hinted.flows.first?.server.port == 40000)
        #expect(hinted.flows.first?.clientFrom == "port 40000 is an application's")
    }

    @Test func aNewSYNOnTheSameAddressesIsANewConnection() throws {
        let capture = try P.capture([
            toServer(99, "", flags: 0x02),
            toServer(99, "", flags: 0x02),  // a retransmitted SYN is the same connection
            toServer(100, "first"), toServer(105, "", flags: 0x11), toClient(0, "", flags: 0x11),
            toServer(5000, "", flags: 0x02),  // a SYN after both FINs is a new connection
            toServer(5001, "second"),
        ])
        #expect(capture.flows.count == 2)
        #expect(capture.flows.map { text($0, .toServer) } == ["first", "second"])
    }

    @Test func udpConversationsSplitAfterSilence() throws {
        func datagram(_ text: String, back: Bool = false) -> [UInt8] {
            back
                ? P.ipv4(Self.server, Self.client, proto: 17, P.udp(from: 53, to: 5000, Array(text.utf8)))
                : P.ipv4(Self.client, Self.server, proto: 17, P.udp(from: 5000, to: 53, Array(text.utf8)))
        }
        let file = PcapWriter.file(
            linkType: 101,
            packets: [
                (100, datagram("q1")), (100.01, datagram("a1", back: true)), (130, datagram("q2")), (200, datagram("q3")),
            ])
        let capture = try Capture(bytes: file, name: "udp.pcap", options: .init(udpIdle: 60))
        #expect(capture.flows.count == 2)
        #expect(capture.flows.map(\.messages.count) == [3, 1])
        #expect(capture.flows[0].replies.map(\.bytes) == [Array("a1".utf8)])
        #expect(capture.flows[0].client.port == 5000)
    }

    @Test func aScheduleKeepsTimesAndWhatCameBeforeEachSend() throws {
        let capture = try P.capture(
            [
                toServer(99, "", flags: 0x02), toClient(499, "", flags: 0x12), toClient(500, "220 ready\r\n"), toServer(100, "EHLO x\r\n"),
                toClient(511, "250 ok\r\n"), toServer(108, "QUIT\r\n"),
            ], step: 0.010)
        let flow = try #require(capture.flows.first)
        let schedule = ReplaySchedule(flow, captureStart: capture.firstTime!)
        #expect(schedule.isStream)
        #expect(schedule.sends.map(\.afterReplies) == [11, 19])
        #expect(schedule.sends.map { ($0.at * 1000).rounded() } == [30, 50])
        #expect(schedule.expectedReplies == 19)
        #expect(ReplaySchedule.due(0.5, origin: 10, speed: 10) == 10.05)
        #expect(ReplaySchedule.due(0.5, origin: 10, speed: 0) == 10)
    }
}
