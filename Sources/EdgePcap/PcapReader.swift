import CPcap

/// One captured packet: when it was seen and the bytes captured (possibly fewer than were sent).
public struct CapturedPacket: Sendable, Hashable {
    /// Seconds since the epoch, with nanosecond precision.
    public var timestamp: Double
    public var originalLength: Int
    public var data: [UInt8]
}

/// A capture file that libpcap could not open or read.
public struct PcapError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var message: String
    public var description: String { "\(file): \(message)" }
}

/// Reads a pcap or pcapng file through libpcap, one packet at a time.
public final class PcapReader {
    public let file: String
    /// The capture's link-layer type (DLT_*), e.g. 1 for Ethernet, 101 for raw IP.
    public let linkType: Int32
    public var linkTypeName: String {
        pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "DLT \(linkType)"
    }

    private let handle: OpaquePointer

    public init(file: String) throws(PcapError) {
        self.file = file
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_open_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            throw PcapError(
                file: file,
                message:
                    "not a readable pcap or pcapng capture: \(String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
            )
        }
        self.handle = handle
        linkType = pcap_datalink(handle)
    }

    deinit {
        pcap_close(handle)
    }

    /// The next packet, or nil at the end of the file. A truncated or corrupt record throws.
    public func next() throws(PcapError) -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header, let data else { return nil }
            let captured = Int(header.pointee.caplen)
            let time = header.pointee.ts
            return CapturedPacket(
                timestamp: Double(time.tv_sec) + Double(time.tv_usec) / 1e9,
                originalLength: Int(header.pointee.len),
                data: Array(UnsafeBufferPointer(start: data, count: captured)))
        case PCAP_ERROR_BREAK:
            return nil
        default:
            throw PcapError(file: file, message: "corrupt capture: \(String(cString: pcap_geterr(handle)))")
        }
    }

    /// Reads up to `limit` packets.
    public func readAll(limit: Int = .max) throws(PcapError) -> [CapturedPacket] {
        var packets: [CapturedPacket] = []
        while packets.count < limit, let packet = try next() { packets.append(packet) }
        return packets
    }
}

/// Writes the classic pcap format (microsecond timestamps), for tests and for captures edgesim
/// makes itself. libpcap reads what this writes.
public enum PcapWriter {
    public static func file(linkType: UInt32, packets: [(timestamp: Double, data: [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = []
        func put32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
        func put16(_ value: UInt16) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
        put32(0xa1b2_c3d4)
        put16(2)
        put16(4)
        put32(0)
        put32(0)
        put32(65535)
        put32(linkType)
        for packet in packets {
            let seconds = packet.timestamp.rounded(.down)
            put32(UInt32(seconds))
            put32(UInt32(((packet.timestamp - seconds) * 1e6).rounded()))
            put32(UInt32(packet.data.count))
            put32(UInt32(packet.data.count))
            bytes += packet.data
        }
        return bytes
    }
}
