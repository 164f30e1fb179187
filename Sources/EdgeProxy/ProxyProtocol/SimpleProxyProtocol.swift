import EdgeDNS
import EdgeModel
import NIOCore

/// Simple Proxy Protocol: a fixed 38-byte header on every UDP datagram, both directions:
/// magic 0x56EC, client address (16 bytes, IPv4 mapped), proxy address (16 bytes), client port,
/// proxy port, all in network byte order.
public enum SimpleProxyProtocol {
    public static let magic: UInt16 = 0x56EC
    public static let length = 38
}

/// The two ends an SPP header names.
public struct SimpleProxyHeader: Sendable, Hashable {
    public var client: Endpoint
    public var proxy: Endpoint

    public init(client: Endpoint, proxy: Endpoint) {
        self.client = client
        self.proxy = proxy
    }
}

extension ByteBuffer {
    @discardableResult
    public mutating func writeSimpleProxyHeader(_ header: SimpleProxyHeader) -> Int {
        var written = writeInteger(SimpleProxyProtocol.magic)
        written += writeInteger(header.client.address.mappedV6)
        written += writeInteger(header.proxy.address.mappedV6)
        written += writeInteger(header.client.port)
        written += writeInteger(header.proxy.port)
        return written
    }

    /// Reads the header at the front of a datagram; throws when the datagram does not start
    /// with a complete one. IPv4-mapped addresses come back as IPv4.
    public mutating func readSimpleProxyHeader() throws(ProxyProtocolError) -> SimpleProxyHeader {
        guard readableBytes >= SimpleProxyProtocol.length else {
            throw ProxyProtocolError("datagram of \(readableBytes) bytes is shorter than a Simple Proxy Protocol header (38)")
        }
        guard getInteger(at: readerIndex, as: UInt16.self) == SimpleProxyProtocol.magic,
            let client = getInteger(at: readerIndex + 2, as: UInt128.self),
            let proxy = getInteger(at: readerIndex + 18, as: UInt128.self),
            let clientPort = getInteger(at: readerIndex + 34, as: UInt16.self),
            let proxyPort = getInteger(at: readerIndex + 36, as: UInt16.self)
        else {
            throw ProxyProtocolError("datagram does not start with the Simple Proxy Protocol magic 0x56EC")
        }
        moveReaderIndex(forwardBy: SimpleProxyProtocol.length)
        return SimpleProxyHeader(
            client: Endpoint(IPAddress.v6(client).unmapped, clientPort), proxy: Endpoint(IPAddress.v6(proxy).unmapped, proxyPort))
    }
}
