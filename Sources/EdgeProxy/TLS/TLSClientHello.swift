import NIOCore

/// What the edge needs from a client's first TLS message before answering it: the name the
/// client asked for (SNI) and the application protocols it offers (ALPN), so both can be passed
/// on to a TLS origin.
public struct TLSClientHello: Equatable, Sendable {
    public var serverName: String?
    public var applicationProtocols: [String]
    /// TLS versions offered (`supported_versions`), or the legacy version alone.
    public var versions: [UInt16]

    /// Why the first bytes are not a ClientHello, in words for an event.
    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The largest ClientHello read; real ones are under 2 KiB, post-quantum key shares included.
    public static let maximumLength = 16 * 1024
}

extension ByteBuffer {
    /// Reads a ClientHello that may span several handshake records. nil when more bytes are
    /// needed; throws when the bytes cannot be one. The reader index does not move either way:
    /// the bytes still go to the TLS library.
    public func peekTLSClientHello() throws(TLSClientHello.Malformed) -> TLSClientHello? {
        var records = self
        var handshake = ByteBuffer()
        while true {
            guard let type = records.readInteger(as: UInt8.self) else { return nil }
            guard type == 22 else { throw Self.notTLS(self) }
            guard let major = records.readInteger(as: UInt8.self) else { return nil }
            guard major == 3 else { throw .init(description: "not a TLS handshake record (version byte \(major))") }
            guard records.readInteger(as: UInt8.self) != nil, let length = records.readInteger(as: UInt16.self) else { return nil }
            guard length > 0, length <= 16_384 + 2_048 else { throw .init(description: "a TLS record of \(length) bytes") }
            guard var fragment = records.readSlice(length: Int(length)) else { return nil }
            handshake.writeBuffer(&fragment)
            guard let kind = handshake.getInteger(at: handshake.readerIndex, as: UInt8.self), handshake.readableBytes >= 4 else {
                continue
            }
            guard kind == 1 else { throw .init(description: "the first handshake message is type \(kind), not a ClientHello") }
            let bodyLength = Int(handshake.getInteger(at: handshake.readerIndex + 1, as: UInt32.self)! >> 8)
            guard bodyLength <= TLSClientHello.maximumLength else {
                throw .init(description: "a ClientHello of \(bodyLength) bytes (at most \(TLSClientHello.maximumLength) read)")
            }
            guard handshake.readableBytes >= 4 + bodyLength else { continue }
            var body = handshake.getSlice(at: handshake.readerIndex + 4, length: bodyLength)!
            return try Self.parseHelloBody(&body)
        }
    }

    private static func notTLS(_ bytes: ByteBuffer) -> TLSClientHello.Malformed {
        let start = bytes.getBytes(at: bytes.readerIndex, length: min(8, bytes.readableBytes)) ?? []
        let printable = start.prefix { $0 >= 0x20 && $0 < 0x7f }
        if printable.count >= 3 {
            return .init(
                description: "plain text where a TLS ClientHello was expected (it began '\(String(decoding: printable, as: UTF8.self))')")
        }
        return .init(description: "not a TLS ClientHello (first byte 0x\(String(start.first ?? 0, radix: 16)))")
    }

    private static func parseHelloBody(_ body: inout ByteBuffer) throws(TLSClientHello.Malformed) -> TLSClientHello {
        let short = TLSClientHello.Malformed(description: "a ClientHello shorter than its fields say")
        guard let legacyVersion = body.readInteger(as: UInt16.self), body.readSlice(length: 32) != nil else { throw short }
        guard let sessionLength = body.readInteger(as: UInt8.self), sessionLength <= 32, body.readSlice(length: Int(sessionLength)) != nil
        else { throw short }
        guard let suitesLength = body.readInteger(as: UInt16.self), suitesLength % 2 == 0, body.readSlice(length: Int(suitesLength)) != nil
        else { throw short }
        guard let compressionLength = body.readInteger(as: UInt8.self), body.readSlice(length: Int(compressionLength)) != nil else {
            throw short
        }
        var hello = TLSClientHello(serverName: nil, applicationProtocols: [], versions: [legacyVersion])
        guard body.readableBytes > 0 else { return hello }
        guard let extensionsLength = body.readInteger(as: UInt16.self), var extensions = body.readSlice(length: Int(extensionsLength))
        else {
            throw short
        }
        while extensions.readableBytes > 0 {
            guard let type = extensions.readInteger(as: UInt16.self), let length = extensions.readInteger(as: UInt16.self),
                var data = extensions.readSlice(length: Int(length))
            else { throw short }
            switch type {
            case 0: hello.serverName = try readServerName(&data)
            case 16: hello.applicationProtocols = try readProtocols(&data)
            case 43:
                guard let count = data.readInteger(as: UInt8.self), count % 2 == 0, count > 0,
                    let versions = data.readSlice(length: Int(count))
                else { throw .init(description: "a malformed supported_versions extension") }
                var list = versions
                hello.versions = (0..<Int(count) / 2).compactMap { _ in list.readInteger(as: UInt16.self) }
            default: break
            }
        }
        return hello
    }

    private static func readServerName(_ data: inout ByteBuffer) throws(TLSClientHello.Malformed) -> String? {
        guard let listLength = data.readInteger(as: UInt16.self), var list = data.readSlice(length: Int(listLength)) else {
            throw .init(description: "a malformed server_name extension")
        }
        while list.readableBytes > 0 {
            guard let kind = list.readInteger(as: UInt8.self), let length = list.readInteger(as: UInt16.self),
                let name = list.readString(length: Int(length))
            else { throw .init(description: "a malformed server_name extension") }
            if kind == 0 {
                guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                    throw .init(description: "a server name that is not a host name")
                }
                return name
            }
        }
        return nil
    }

    private static func readProtocols(_ data: inout ByteBuffer) throws(TLSClientHello.Malformed) -> [String] {
        guard let listLength = data.readInteger(as: UInt16.self), var list = data.readSlice(length: Int(listLength)) else {
            throw .init(description: "a malformed ALPN extension")
        }
        var protocols: [String] = []
        while list.readableBytes > 0 {
            guard let length = list.readInteger(as: UInt8.self), length > 0, let name = list.readString(length: Int(length)) else {
                throw .init(description: "a malformed ALPN extension")
            }
            protocols.append(name)
        }
        return protocols
    }
}
