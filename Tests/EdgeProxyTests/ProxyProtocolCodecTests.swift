import EdgeDNS
import EdgeModel
import NIOCore
import Testing

@testable import EdgeProxy

@Suite struct ProxyProtocolV1Tests {
    let client = Endpoint(IPAddress("198.18.1.1")!, 56324)
    let edge = Endpoint(IPAddress("198.19.0.5")!, 25)

    @Test func writesTheExactLine() {
        var buffer = ByteBuffer()
        buffer.writeProxyV1(ProxyHeader(transport: .stream, source: client, destination: edge))
        #expect(String(buffer: buffer) == "PROXY TCP4 198.18.1.1 198.19.0.5 56324 25\r\n")
        var six = ByteBuffer()
        six.writeProxyV1(ProxyHeader.proxied(transport: .stream, source: Endpoint(IPAddress("2001:db8::1")!, 1), destination: edge))
        #expect(String(buffer: six) == "PROXY TCP6 2001:db8::1 ::ffff:198.19.0.5 1 25\r\n", "mixed families become IPv6 with IPv4 mapped")
    }

    @Test func longestLineFitsTheLimit() {
        let wide = Endpoint(IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!, 65535)
        var buffer = ByteBuffer()
        let written = buffer.writeProxyV1(ProxyHeader(transport: .stream, source: wide, destination: wide))
        #expect(written == 104)
        #expect(written <= ProxyProtocolV1.maxLength)
    }

    @Test func readsBackByteByByteAndLeavesPayload() throws {
        var source = ByteBuffer()
        source.writeProxyV1(ProxyHeader(transport: .stream, source: client, destination: edge))
        source.writeString("EHLO")
        var fed = ByteBuffer()
        var header: ProxyHeader?
        for byte in source.readableBytesView {
            fed.writeInteger(byte)
            let before = fed.readerIndex
            if header == nil {
                header = try fed.readProxyV1()
                if header == nil { #expect(fed.readerIndex == before, "no bytes consumed while incomplete") }
            }
        }
        #expect(header == ProxyHeader(transport: .stream, source: client, destination: edge))
        #expect(String(buffer: fed) == "EHLO")
    }

    @Test func unknownIsAccepted() throws {
        var buffer = ByteBuffer(string: "PROXY UNKNOWN\r\n")
        #expect(try buffer.readProxyV1() == ProxyHeader(transport: .unspecified, source: nil, destination: nil))
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 56324  25\r\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 056324 25\r\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 65536 25\r\n",
        "PROXY TCP4 2001:db8::1 198.19.0.5 1 25\r\n",
        "PROXY TCP5 198.18.1.1 198.19.0.5 1 25\r\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 1 25\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 1\r\n",
        "PROXY TCP4 198.18.1.1 198.19.0.5 -1 25\r\n",
        "PROXY " + String(repeating: "A", count: 120),
    ])
    func malformedLinesAreRejectedWithoutConsuming(text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: ProxyProtocolError.self) { try buffer.readProxyV1() }
        #expect(buffer.readerIndex == 0)
    }
}

@Suite struct ProxyProtocolV2Tests {
    @Test func writesTheExactIPv4Bytes() {
        var buffer = ByteBuffer()
        buffer.writeProxyV2(
            ProxyHeader(
                transport: .stream, source: Endpoint(IPAddress("198.18.1.1")!, 0x1234), destination: Endpoint(IPAddress("198.19.0.5")!, 25))
        )
        #expect(
            Array(buffer.readableBytesView) == ProxyProtocolV2.signature + [
                0x21, 0x11, 0x00, 0x0C, 198, 18, 1, 1, 198, 19, 0, 5, 0x12, 0x34, 0x00, 0x19,
            ])
    }

    @Test func writesIPv6DatagramHeader() throws {
        var buffer = ByteBuffer()
        let header = ProxyHeader(
            transport: .datagram, source: Endpoint(IPAddress("2001:db8::1")!, 5000), destination: Endpoint(IPAddress("2001:db8:a::1")!, 53))
        buffer.writeProxyV2(header)
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.count == 16 + 36)
        #expect(bytes[12...15] == [0x21, 0x22, 0x00, 0x24])
        #expect(Array(bytes[16..<32]) == IPAddress("2001:db8::1")!.bytes)
        var copy = buffer
        #expect(try copy.readProxyV2() == header)
    }

    @Test func roundTripsWithTLVsByteByByte() throws {
        let header = ProxyHeader(
            transport: .stream, source: Endpoint(IPAddress("198.18.1.1")!, 1), destination: Endpoint(IPAddress("198.19.0.5")!, 2),
            tlvs: [.init(type: 0x04, value: []), .init(type: 0x02, value: Array("mail.example".utf8))])
        var whole = ByteBuffer()
        whole.writeProxyV2(header)
        whole.writeString("payload")
        var fed = ByteBuffer()
        var decoded: ProxyHeader?
        for byte in whole.readableBytesView {
            fed.writeInteger(byte)
            if decoded == nil {
                let before = fed.readerIndex
                decoded = try fed.readProxyV2()
                if decoded == nil { #expect(fed.readerIndex == before) }
            }
        }
        #expect(decoded == header)
        #expect(String(buffer: fed) == "payload")
    }

    @Test func localCommandHasNoAddresses() throws {
        var buffer = ByteBuffer(bytes: ProxyProtocolV2.signature + [0x20, 0x00, 0x00, 0x00])
        #expect(try buffer.readProxyV2() == ProxyHeader(command: .local, transport: .unspecified, source: nil, destination: nil))
    }

    @Test(
        arguments: [
            ([0x11, 0x11, 0x00, 0x0C] + Array(repeating: 0, count: 12), "version must be 2"),
            ([0x2F, 0x11, 0x00, 0x0C] + Array(repeating: 0, count: 12), "command must be LOCAL or PROXY"),
            ([0x21, 0x51, 0x00, 0x0C] + Array(repeating: 0, count: 12), "family must be"),
            ([0x21, 0x13, 0x00, 0x0C] + Array(repeating: 0, count: 12), "transport must be"),
            ([0x21, 0x21, 0x00, 0x0C] + Array(repeating: 0, count: 12), "too short for its address family"),
            ([0x21, 0x11, 0x00, 0x10] + Array(repeating: 0, count: 12) + [0x01, 0x00, 0x09, 0x00], "runs past the header's end"),
        ] as [([UInt8], String)])
    func malformedHeadersAreRejectedWithoutConsuming(tail: [UInt8], message: String) {
        var buffer = ByteBuffer(bytes: ProxyProtocolV2.signature + tail)
        #expect {
            try buffer.readProxyV2()
        } throws: { error in
            (error as? ProxyProtocolError)?.message.contains(message) == true
        }
        #expect(buffer.readerIndex == 0)
    }

    @Test func wrongSignatureIsRejectedAtOnce() {
        var buffer = ByteBuffer(bytes: [0x0D, 0x0A, 0x0D, 0x0B])
        #expect(throws: ProxyProtocolError.self) { try buffer.readProxyV2() }
    }
}

@Suite struct SimpleProxyProtocolTests {
    @Test func headerIs38BytesWithMappedIPv4() throws {
        let header = SimpleProxyHeader(client: Endpoint(IPAddress("198.18.1.1")!, 5000), proxy: Endpoint(IPAddress("198.19.0.5")!, 53))
        var buffer = ByteBuffer()
        #expect(buffer.writeSimpleProxyHeader(header) == 38)
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes[0...1] == [0x56, 0xEC])
        #expect(Array(bytes[2..<18]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 1])
        #expect(bytes[34...37] == [0x13, 0x88, 0x00, 0x35])
        #expect(try buffer.readSimpleProxyHeader() == header)
        #expect(buffer.readableBytes == 0)
    }

    @Test func shortOrUnmarkedDatagramsAreRejected() {
        var short = ByteBuffer(bytes: [0x56, 0xEC, 1, 2])
        #expect(throws: ProxyProtocolError.self) { try short.readSimpleProxyHeader() }
        var unmarked = ByteBuffer(bytes: Array(repeating: 0, count: 40))
        #expect(throws: ProxyProtocolError.self) { try unmarked.readSimpleProxyHeader() }
        #expect(unmarked.readerIndex == 0)
    }
}
