import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import EdgeProxy

/// The ClientHello reader, fed what a real TLS client (BoringSSL through swift-nio-ssl) sends.
@Suite struct TLSClientHelloTests {
    /// The first bytes a TLS client writes, offering `name` and `protocols`.
    func clientHelloBytes(name: String?, protocols: [String]) throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            NIOSSLClientHandler(context: try NIOSSLContext(configuration: configuration), serverHostname: name))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var bytes = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&chunk) }
        _ = try? channel.finish()
        return bytes
    }

    @Test func nameProtocolsAndVersionsAreRead() throws {
        let bytes = try clientHelloBytes(name: "app.example", protocols: ["h2", "http/1.1"])
        let hello = try #require(try bytes.peekTLSClientHello())
        #expect(hello.serverName == "app.example")
        #expect(hello.applicationProtocols == ["h2", "http/1.1"])
        #expect(hello.versions.contains(0x0304) && hello.versions.contains(0x0303))
        let none = try #require(try clientHelloBytes(name: nil, protocols: []).peekTLSClientHello())
        #expect(none.serverName == nil && none.applicationProtocols.isEmpty)
    }

    /// Every prefix asks for more; the whole hello is read, and the reader index never moves.
    @Test func aHelloArrivingByteByByteIsReadOnlyWhenComplete() throws {
        let bytes = try clientHelloBytes(name: "app.example", protocols: ["http/1.1"])
        for length in 0..<bytes.readableBytes {
            let prefix = bytes.getSlice(at: 0, length: length)!
            #expect(try prefix.peekTLSClientHello() == nil, "prefix of \(length)")
        }
        #expect(try bytes.peekTLSClientHello()?.serverName == "app.example")
        #expect(bytes.readerIndex == 0)
    }

    /// A hello split over two handshake records (allowed by TLS) reads the same.
    @Test func aHelloSplitAcrossRecordsIsJoined() throws {
        var bytes = try clientHelloBytes(name: "split.example", protocols: ["h2"])
        let header = bytes.readBytes(length: 5)!
        let body = bytes.readBytes(length: bytes.readableBytes)!
        var split = ByteBuffer()
        for part in [body.prefix(40), body.dropFirst(40)] {
            split.writeBytes(header.prefix(3))
            split.writeInteger(UInt16(part.count))
            split.writeBytes(part)
        }
        #expect(try split.peekTLSClientHello()?.serverName == "split.example")
    }

    @Test func plainTextAndOtherRecordsAreRefusedWithAReason() throws {
        let http = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(throws: TLSClientHello.Malformed(description: "plain text where a TLS ClientHello was expected (it began 'GET / HT')")) {
            try http.peekTLSClientHello()
        }
        #expect(throws: TLSClientHello.Malformed.self) { try ByteBuffer(bytes: [0x17, 3, 3, 0, 1, 0]).peekTLSClientHello() }
        // A handshake record holding a ServerHello (type 2), not a ClientHello.
        #expect(throws: TLSClientHello.Malformed.self) { try ByteBuffer(bytes: [22, 3, 3, 0, 4, 2, 0, 0, 0]).peekTLSClientHello() }
        // A ClientHello whose body claims more extension bytes than it has.
        var truncated = try clientHelloBytes(name: "a.example", protocols: [])
        let length = truncated.readableBytes
        var cut = truncated.readSlice(length: length - 10)!
        cut.setInteger(UInt16(length - 15), at: 3)
        cut.setInteger(UInt32(1) << 24 | UInt32(length - 19), at: 5, as: UInt32.self)
        #expect(throws: TLSClientHello.Malformed.self) { try cut.peekTLSClientHello() }
    }
}
