import CPcap

#if canImport(Glibc)
    import Glibc
#endif

/// One captured packet: when it was seen and the bytes captured (possibly fewer than were sent).
public struct CapturedPacket: Sendable, Hashable {
    /// Seconds since the epoch, with nanosecond precision.
    public var timestamp: Double
    public var originalLength: Int
    public var data: [UInt8]

    public init(timestamp: Double, originalLength: Int, data: [UInt8]) {
        self.timestamp = timestamp
        self.originalLength = originalLength
        self.data = data
    }
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

    /// In words, as libpcap describes it ("Linux cooked v2").
    public var linkTypeDescription: String {
        pcap_datalink_val_to_description(linkType).map { String(cString: $0) } ?? linkTypeName
    }

    /// pcap or pcapng.
    public var format: String {
        // libpcap reports pcapng files as version 1.0 of its own format.
        let major = pcap_major_version(handle)
        return major == 1 ? "pcapng" : "pcap"
    }

    /// The largest packet a record may hold (the capture's snap length).
    public let snapLength: Int
    private let handle: OpaquePointer
    /// For a capture read from memory: the bytes libpcap reads through `fmemopen`.
    private let memory: UnsafeMutableRawBufferPointer?
    private var records = 0
    /// The compiled filter, applied to each record here (not by libpcap) so record numbers stay
    /// those of the file.
    private var filter: bpf_program?

    /// `filter`: a libpcap filter expression (as tcpdump takes); only matching records are read.
    public convenience init(file: String, filter: String? = nil) throws(PcapError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let handle = pcap_open_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        try self.init(handle: handle, memory: nil, name: file, errorBuffer: errorBuffer, filter: filter)
    }

    /// A capture held in memory (pcap or pcapng), read through libpcap as a file would be.
    public convenience init(bytes: [UInt8], name: String, filter: String? = nil) throws(PcapError) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        memory.copyBytes(from: bytes)
        guard let stream = fmemopen(memory.baseAddress, bytes.count, "rb") else {
            memory.deallocate()
            throw PcapError(file: name, message: "cannot read the capture from memory")
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let handle = pcap_fopen_offline_with_tstamp_precision(stream, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        if handle == nil { fclose(stream) }
        try self.init(handle: handle, memory: memory, name: name, errorBuffer: errorBuffer, filter: filter)
    }

    private init(handle: OpaquePointer?, memory: UnsafeMutableRawBufferPointer?, name: String, errorBuffer: [CChar], filter: String?)
        throws(PcapError)
    {
        file = name
        guard let handle else {
            memory?.deallocate()
            throw PcapError(
                file: name,
                message:
                    "not a readable pcap or pcapng capture: \(String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
            )
        }
        linkType = pcap_datalink(handle)
        snapLength = Int(pcap_snapshot(handle))
        guard pcap_datalink_val_to_name(linkType) != nil else {
            pcap_close(handle)
            memory?.deallocate()
            throw PcapError(file: name, message: "unknown link type \(linkType): not a capture edgesim can decode")
        }
        if let filter {
            var program = bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let reason = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                memory?.deallocate()
                throw PcapError(file: name, message: "filter '\(filter)' is not a valid capture filter: \(reason)")
            }
            self.filter = program
        }
        self.handle = handle
        self.memory = memory
    }

    deinit {
        if filter != nil { pcap_freecode(&filter!) }
        pcap_close(handle)
        memory?.deallocate()
    }

    /// The next packet (matching the filter, if any), or nil at the end of the file. A truncated
    /// or corrupt record throws.
    public func next() throws(PcapError) -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while true {
            switch pcap_next_ex(handle, &header, &data) {
            case 1:
                guard let header, let data else { return nil }
                records += 1
                let captured = Int(header.pointee.caplen)
                let original = Int(header.pointee.len)
                // Each record against its header: never more captured than was on the wire, nor than the snap length.
                guard captured <= original else {
                    throw PcapError(file: file, message: "record \(records): \(captured) bytes captured of a \(original)-byte packet")
                }
                guard snapLength <= 0 || captured <= snapLength else {
                    throw PcapError(
                        file: file, message: "record \(records): \(captured) bytes captured, over the snap length \(snapLength)")
                }
                if filter != nil, pcap_offline_filter(&filter!, header, data) == 0 { continue }
                let time = header.pointee.ts
                return CapturedPacket(
                    timestamp: Double(time.tv_sec) + Double(time.tv_usec) / 1e9, originalLength: original,
                    data: Array(UnsafeBufferPointer(start: data, count: captured)))
            case PCAP_ERROR_BREAK:
                return nil
            default:
                throw PcapError(file: file, message: "record \(records + 1): corrupt capture: \(String(cString: pcap_geterr(handle)))")
            }
        }
    }

    /// The number of the record `next()` returned last (counting every record of the file).
    public var recordNumber: Int { records }

    /// Reads every record to the end; returns how many there were, or throws at the first bad one.
    public func verify() throws(PcapError) -> Int {
        var count = 0
        while try next() != nil { count += 1 }
        return count
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
