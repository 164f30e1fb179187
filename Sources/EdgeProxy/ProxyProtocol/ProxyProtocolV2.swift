import EdgeDNS
import EdgeModel
import NIOCore

/// PROXY protocol version 2: a binary header with a 12-byte signature.
public enum ProxyProtocolV2 {
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Signature, version/command, family/transport, length.
    public static let fixedLength = 16
    /// The largest header a receiver must accept before it gives up: what is sent always fits 536 bytes.
    public static let maxLength = fixedLength + 65535
}

extension ByteBuffer {
    /// Writes the header straight into the buffer, addresses as integers in network order: no
    /// allocation but the buffer's own growth.
    @discardableResult
    public mutating func writeProxyV2(_ header: ProxyHeader) -> Int {
        var written = writeBytes(ProxyProtocolV2.signature)
        written += writeInteger(UInt8(0x20 | header.command.rawValue))
        var family: UInt8 = 0
        var addresses: (IPAddress, UInt16, IPAddress, UInt16)?
        if header.command == .proxy, let source = header.source, let destination = header.destination,
            source.address.isIPv4 == destination.address.isIPv4
        {
            family = source.address.isIPv4 ? 1 : 2
            addresses = (source.address, source.port, destination.address, destination.port)
        }
        let transport = family == 0 ? 0 : header.transport.rawValue
        written += writeInteger(UInt8(family << 4 | transport))
        let tlvLength = header.tlvs.reduce(0) { $0 + 3 + $1.value.count }
        let addressLength = family == 1 ? 12 : family == 2 ? 36 : 0
        written += writeInteger(UInt16(addressLength + tlvLength))
        if let (source, sourcePort, destination, destinationPort) = addresses {
            written += writeAddress(source)
            written += writeAddress(destination)
            written += writeInteger(sourcePort)
            written += writeInteger(destinationPort)
        }
        for tlv in header.tlvs {
            written += writeInteger(tlv.type)
            written += writeInteger(UInt16(tlv.value.count))
            written += writeBytes(tlv.value)
        }
        return written
    }

    private mutating func writeAddress(_ address: IPAddress) -> Int {
        switch address {
        case .v4(let value): return writeInteger(value)
        case .v6(let value): return writeInteger(value)
        }
    }

    /// Reads a v2 header. Returns nil when more bytes are needed; throws on anything malformed.
    /// The reader index moves only when a whole valid header was read.
    public mutating func readProxyV2() throws(ProxyProtocolError) -> ProxyHeader? {
        let view = readableBytesView
        let prefix = Swift.min(view.count, ProxyProtocolV2.signature.count)
        guard view.prefix(prefix).elementsEqual(ProxyProtocolV2.signature.prefix(prefix)) else {
            throw ProxyProtocolError("not a PROXY v2 header: the signature does not match")
        }
        guard view.count >= ProxyProtocolV2.fixedLength,
            let versionCommand = getInteger(at: readerIndex + 12, as: UInt8.self),
            let familyTransport = getInteger(at: readerIndex + 13, as: UInt8.self),
            let length = getInteger(at: readerIndex + 14, as: UInt16.self)
        else { return nil }
        guard versionCommand >> 4 == 2 else { throw ProxyProtocolError("PROXY v2 version must be 2, found \(versionCommand >> 4)") }
        guard let command = ProxyHeader.Command(rawValue: versionCommand & 0x0f) else {
            throw ProxyProtocolError("PROXY v2 command must be LOCAL or PROXY, found \(versionCommand & 0x0f)")
        }
        guard view.count >= ProxyProtocolV2.fixedLength + Int(length) else { return nil }
        guard let transport = ProxyHeader.Transport(rawValue: familyTransport & 0x0f) else {
            throw ProxyProtocolError("PROXY v2 transport must be UNSPEC, STREAM or DGRAM, found \(familyTransport & 0x0f)")
        }
        let family = familyTransport >> 4
        let addressLength: Int
        switch family {
        case 0: addressLength = 0
        case 1: addressLength = 12
        case 2: addressLength = 36
        case 3: addressLength = 216  // AF_UNIX: accepted, addresses not reported
        default: throw ProxyProtocolError("PROXY v2 family must be UNSPEC, INET, INET6 or UNIX, found \(family)")
        }
        guard Int(length) >= addressLength else {
            throw ProxyProtocolError("PROXY v2 length \(length) is too short for its address family (\(addressLength) bytes)")
        }
        let body = readerIndex + ProxyProtocolV2.fixedLength
        var source: Endpoint?
        var destination: Endpoint?
        if command == .proxy, family == 1 || family == 2 {
            let size = family == 1 ? 4 : 16
            func address(at index: Int) -> IPAddress? {
                family == 1
                    ? getInteger(at: index, as: UInt32.self).map(IPAddress.v4) : getInteger(at: index, as: UInt128.self).map(IPAddress.v6)
            }
            guard let sourceAddress = address(at: body), let destinationAddress = address(at: body + size),
                let sourcePort = getInteger(at: body + 2 * size, as: UInt16.self),
                let destinationPort = getInteger(at: body + 2 * size + 2, as: UInt16.self)
            else { return nil }
            source = Endpoint(sourceAddress, sourcePort)
            destination = Endpoint(destinationAddress, destinationPort)
        }
        var tlvs: [ProxyHeader.TLV] = []
        var offset = body + addressLength
        let end = body + Int(length)
        while offset < end {
            guard end - offset >= 3, let type = getInteger(at: offset, as: UInt8.self),
                let tlvLength = getInteger(at: offset + 1, as: UInt16.self), offset + 3 + Int(tlvLength) <= end,
                let value = getBytes(at: offset + 3, length: Int(tlvLength))
            else {
                throw ProxyProtocolError("PROXY v2 TLV at byte \(offset - readerIndex) runs past the header's end")
            }
            tlvs.append(ProxyHeader.TLV(type: type, value: value))
            offset += 3 + Int(tlvLength)
        }
        moveReaderIndex(to: end)
        // Without addresses the transport says nothing (as a sender writes it: UNSPEC).
        return ProxyHeader(
            command: command, transport: source == nil ? .unspecified : transport, source: source, destination: destination, tlvs: tlvs)
    }
}
