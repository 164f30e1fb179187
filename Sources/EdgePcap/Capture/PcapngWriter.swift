#if canImport(Glibc)
    import Glibc
#endif

/// Writes a pcapng file (one section, one interface, nanosecond timestamps) that Wireshark,
/// tshark and libpcap read. libpcap can read pcapng but not write it, so edgesim writes it.
public final class PcapngWriter {
    public let path: String
    /// The most packet bytes the file takes; past it packets are counted, not written.
    public let limit: Int
    public private(set) var packets = 0
    public private(set) var bytes = 0
    public private(set) var overLimit = 0
    private let file: UnsafeMutablePointer<FILE>

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `linkType`: the LINKTYPE_ value of the packets (1 Ethernet, 101 raw IP, 113 Linux cooked).
    public init(path: String, linkType: UInt16, interface: String, snapLength: UInt32 = 262_144, limit: Int = 256 << 20) throws(Failure) {
        guard let file = fopen(path, "wb") else {
            throw Failure(description: "cannot write the capture \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.limit = limit
        self.file = file
        // Section header: byte-order magic, version 1.0, section length unknown, the writer's name.
        var section = Block(type: 0x0A0D_0D0A)
        section.u32(0x1A2B_3C4D)
        section.u16(1)
        section.u16(0)
        section.u64(UInt64.max)
        section.option(4, Array("edgesim".utf8))
        write(section.finish())
        // The interface: link type, snap length, timestamps in nanoseconds (if_tsresol 9).
        var description = Block(type: 1)
        description.u16(linkType)
        description.u16(0)
        description.u32(snapLength)
        description.option(2, Array(interface.utf8))
        description.option(9, [9])
        write(description.finish())
    }

    deinit {
        fclose(file)
    }

    /// One packet seen at `nanoseconds` since the epoch.
    public func write(nanoseconds: UInt64, data: UnsafeRawBufferPointer, originalLength: Int) {
        guard bytes + data.count <= limit else {
            overLimit += 1
            return
        }
        // Enhanced packet block: header, the packet padded to 4 bytes, the length again; written
        // in place, no copy of the packet.
        let padding = (4 - data.count % 4) % 4
        let total = UInt32(32 + data.count + padding)
        var header: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            UInt32(6).littleEndian, total.littleEndian, 0, UInt32(truncatingIfNeeded: nanoseconds >> 32).littleEndian,
            UInt32(truncatingIfNeeded: nanoseconds).littleEndian, UInt32(data.count).littleEndian,
            UInt32(clamping: originalLength).littleEndian
        )
        var trailer = (UInt32(0), total.littleEndian)
        withUnsafeBytes(of: &header) { _ = fwrite($0.baseAddress, 1, $0.count, file) }
        if data.count > 0 { _ = fwrite(data.baseAddress, 1, data.count, file) }
        withUnsafeBytes(of: &trailer) { _ = fwrite($0.baseAddress! + (4 - padding), 1, padding + 4, file) }
        packets += 1
        bytes += data.count
    }

    public func write(nanoseconds: UInt64, packet: [UInt8]) {
        packet.withUnsafeBytes { write(nanoseconds: nanoseconds, data: $0, originalLength: packet.count) }
    }

    public func flush() {
        fflush(file)
    }

    private func write(_ block: [UInt8]) {
        _ = block.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }

    /// A block being built: type, length, body, options, length again.
    private struct Block {
        var bytes: [UInt8]
        var hasOptions = false

        init(type: UInt32) {
            bytes = []
            u32(type)
            u32(0)
        }

        mutating func u16(_ value: UInt16) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
        mutating func u32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
        mutating func u64(_ value: UInt64) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }

        mutating func pad() {
            while bytes.count % 4 != 0 { bytes.append(0) }
        }

        mutating func option(_ code: UInt16, _ value: [UInt8]) {
            hasOptions = true
            u16(code)
            u16(UInt16(value.count))
            bytes += value
            pad()
        }

        mutating func finish() -> [UInt8] {
            if hasOptions { u32(0) }  // opt_endofopt
            let total = UInt32(bytes.count + 4)
            u32(total)
            withUnsafeBytes(of: total.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
            return bytes
        }
    }
}
