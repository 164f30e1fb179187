import EdgeModel
import NIOCore

/// PROXY protocol version 1: one text line, `PROXY TCP4 src dst sport dport\r\n`, at most 107 bytes.
public enum ProxyProtocolV1 {
    public static let maxLength = 107
    static let signature: [UInt8] = Array("PROXY ".utf8)
}

extension ByteBuffer {
    /// Writes a v1 line. Only stream headers with addresses, or UNKNOWN, can be written.
    @discardableResult
    public mutating func writeProxyV1(_ header: ProxyHeader) -> Int {
        guard header.command == .proxy, let source = header.source, let destination = header.destination,
            source.address.isIPv4 == destination.address.isIPv4
        else {
            return writeString("PROXY UNKNOWN\r\n")
        }
        let family = source.address.isIPv4 ? "TCP4" : "TCP6"
        return writeString("PROXY \(family) \(source.address) \(destination.address) \(source.port) \(destination.port)\r\n")
    }

    /// Reads a v1 line. Returns nil when more bytes are needed; throws on anything malformed.
    /// The reader index moves only when a whole valid header was read.
    public mutating func readProxyV1() throws(ProxyProtocolError) -> ProxyHeader? {
        let available = readableBytesView
        let prefixLength = Swift.min(available.count, ProxyProtocolV1.signature.count)
        guard available.prefix(prefixLength).elementsEqual(ProxyProtocolV1.signature.prefix(prefixLength)) else {
            throw ProxyProtocolError("not a PROXY v1 header: it must start with 'PROXY '")
        }
        guard let newline = available.prefix(ProxyProtocolV1.maxLength).firstIndex(of: UInt8(ascii: "\n")) else {
            if available.count >= ProxyProtocolV1.maxLength {
                throw ProxyProtocolError("PROXY v1 header has no CRLF within \(ProxyProtocolV1.maxLength) bytes")
            }
            return nil
        }
        let lineEnd = newline - available.startIndex
        guard lineEnd >= 1, available[newline - 1] == UInt8(ascii: "\r") else {
            throw ProxyProtocolError("PROXY v1 header must end with CRLF")
        }
        let line = String(decoding: available.prefix(lineEnd - 1), as: UTF8.self)
        let header = try Self.parseProxyV1(line)
        moveReaderIndex(forwardBy: lineEnd + 1)
        return header
    }

    private static func parseProxyV1(_ line: String) throws(ProxyProtocolError) -> ProxyHeader {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 2, fields[0] == "PROXY" else { throw ProxyProtocolError("malformed PROXY v1 line") }
        if fields[1] == "UNKNOWN" {
            return ProxyHeader(transport: .unspecified, source: nil, destination: nil)
        }
        guard fields.count == 6 else {
            throw ProxyProtocolError("PROXY v1 line needs 6 fields separated by single spaces, found \(fields.count)")
        }
        let v4: Bool
        switch fields[1] {
        case "TCP4": v4 = true
        case "TCP6": v4 = false
        default: throw ProxyProtocolError("PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN, found '\(fields[1].prefix(8))'")
        }
        guard let source = IPAddress(fields[2]), let destination = IPAddress(fields[3]),
            source.isIPv4 == v4, destination.isIPv4 == v4
        else {
            throw ProxyProtocolError("PROXY v1 addresses are not valid \(v4 ? "IPv4" : "IPv6") addresses")
        }
        let sourcePort = try port(fields[4])
        let destinationPort = try port(fields[5])
        return ProxyHeader(
            transport: .stream, source: Endpoint(source, sourcePort), destination: Endpoint(destination, destinationPort))
    }

    /// 0-65535, decimal, no leading zeros, no sign.
    private static func port(_ text: Substring) throws(ProxyProtocolError) -> UInt16 {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            text == "0" || !text.hasPrefix("0"), let value = UInt16(text)
        else {
            throw ProxyProtocolError("PROXY v1 port '\(text.prefix(8))' is not a number 0-65535 without leading zeros")
        }
        return value
    }
}
