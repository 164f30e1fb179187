import EdgeModel
import EdgeProxy
import EdgeRouting
import NIOCore
import Testing

/// The relay header and the probe datagrams: round trips, byte by byte, and hostile input.
@Suite struct SmartRoutingCodecTests {
    let header = RelayHeader(
        app: "echo", client: Endpoint(IPAddress("2001:db8::7")!, 40000), edge: Endpoint(IPAddress("198.19.0.1")!, 7000),
        origin: Endpoint(IPAddress("198.18.0.9")!, 7000), via: ["nrt", "sin"])

    @Test func aRelayHeaderReadsBackByteByByte() throws {
        var whole = ByteBuffer()
        whole.writeRelayHeader(header)
        whole.writeString("payload")
        var partial = ByteBuffer()
        var read: RelayHeader?
        for byte in whole.readableBytesView {
            partial.writeInteger(byte)
            let before = partial.readerIndex
            read = try partial.readRelayHeader()
            if read != nil { break }
            #expect(partial.readerIndex == before, "an incomplete header leaves the reader where it was")
        }
        #expect(read == header)
        var direct = ByteBuffer()
        direct.writeRelayHeader(RelayHeader(app: "a", client: header.client, edge: header.edge, origin: header.origin, via: []))
        #expect(try direct.readRelayHeader()?.via == [])
        #expect(whole.readableBytes > 0)
    }

    @Test(arguments: [
        "EDGESIM-RELAY/1 echo 1.2.3.4:1 1.2.3.4:2 1.2.3.4:3 -\n",  // no CR
        "EDGESIM-RELAY/2 echo 1.2.3.4:1 1.2.3.4:2 1.2.3.4:3 -\r\n",
        "EDGESIM-RELAY/1 echo 1.2.3.4 1.2.3.4:2 1.2.3.4:3 -\r\n",
        "EDGESIM-RELAY/1 echo 1.2.3.4:1 1.2.3.4:2 1.2.3.4:3\r\n",
        "EDGESIM-RELAY/1 echo 1.2.3.4:1 1.2.3.4:2 1.2.3.4:3 a,,b\r\n",
        "EDGESIM-RELAY/1  1.2.3.4:1 1.2.3.4:2 1.2.3.4:3 -\r\n",
        "EDGESIM-RELAY/1 \u{7}cho 1.2.3.4:1 1.2.3.4:2 1.2.3.4:3 -\r\n",
        "GET / HTTP/1.1\r\n",
    ])
    func aMalformedRelayHeaderIsRefused(_ text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: RelayHeaderError.self) { try buffer.readRelayHeader() }
        #expect(buffer.readerIndex == 0)
    }

    @Test func aRelayHeaderWithoutAnEndIsRefusedOnceTooLong() throws {
        var buffer = ByteBuffer(string: String(repeating: "x", count: RelayHeader.maximumLength - 1))
        #expect(try buffer.readRelayHeader() == nil)
        buffer.writeString("x")
        #expect(throws: RelayHeaderError.self) { try buffer.readRelayHeader() }
    }

    @Test func probeMessagesReadBack() throws {
        let table = [
            "nrt": PathMeasurement(rtt: .microseconds(103_000), variation: .microseconds(400), loss: 0.05, answering: true),
            "198.18.0.9": PathMeasurement(rtt: .microseconds(33_300), answering: false),
        ]
        let relayed = RelayDatagram(
            app: "game", origin: Endpoint(IPAddress("2001:db8::9")!, 5353), via: ["sin"], payload: ByteBuffer(string: "payload"))
        for message in [ProbeMessage.request(token: 42), .reply(token: 7, table: table), .update(table: table), .relay(relayed)] {
            var buffer = ByteBuffer()
            buffer.writeProbeMessage(message)
            #expect(try buffer.readProbeMessage() == message)
        }
    }

    /// Every prefix of a valid reply, and the reply with a byte more, is refused.
    @Test func aCutOrLongProbeMessageIsRefused() throws {
        var buffer = ByteBuffer()
        buffer.writeProbeMessage(.reply(token: 7, table: ["nrt": PathMeasurement(rtt: .milliseconds(5))]))
        for length in 0..<buffer.readableBytes {
            var prefix = buffer.getSlice(at: 0, length: length)!
            #expect(throws: ProbeMessageError.self) { try prefix.readProbeMessage() }
        }
        var longer = buffer
        longer.writeInteger(UInt8(0))
        #expect(throws: ProbeMessageError.self) { try longer.readProbeMessage() }
        var hugeCount = ByteBuffer(bytes: [0x45, 0x53, 0x50, 0x01, 2] + [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF])
        #expect(throws: ProbeMessageError.self) { try hugeCount.readProbeMessage() }
    }
}
