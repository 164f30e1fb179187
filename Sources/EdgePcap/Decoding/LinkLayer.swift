/// Where the IP packet starts inside a captured frame, for each link type edgesim decodes.
public enum LinkLayer: Sendable, Hashable {
    case ethernet
    /// Linux "cooked" capture, version 1 (16-byte header) and 2 (20-byte header): `tcpdump -i any`.
    case linuxCooked
    case linuxCooked2
    /// No link header: the record is the IP packet.
    case raw
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    case null
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    case loop

    /// The layer for a libpcap DLT value, or nil when edgesim cannot decode it.
    public init?(dlt: Int32) {
        switch dlt {
        case 0: self = .null
        case 1: self = .ethernet
        case 12, 14, 101, 228, 229: self = .raw
        case 108: self = .loop
        case 113: self = .linuxCooked
        case 276: self = .linuxCooked2
        default: return nil
        }
    }

    public static let supportedNames = "Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1 and v2, raw IP, BSD loopback (null, loop)"

    /// The network-layer packet of a frame: its IP version and where it starts, or why there is none.
    public func network(of frame: ArraySlice<UInt8>) -> NetworkPayload {
        let start = frame.startIndex
        switch self {
        case .raw:
            guard let first = frame.first else { return .truncated("an empty record") }
            switch first >> 4 {
            case 4: return .ipv4(start)
            case 6: return .ipv6(start)
            default: return .other("IP version \(first >> 4)")
            }
        case .ethernet:
            var offset = 12
            while true {
                guard frame.count >= offset + 2 else { return .truncated("an Ethernet header") }
                let type = frame.uint16(at: offset)
                switch type {
                case 0x8100, 0x88a8, 0x9100:
                    offset += 4  // a VLAN tag: its type field follows it
                default:
                    return Self.etherType(type, at: start + offset + 2)
                }
            }
        case .linuxCooked:
            guard frame.count >= 16 else { return .truncated("a Linux cooked header") }
            return Self.etherType(frame.uint16(at: 14), at: start + 16)
        case .linuxCooked2:
            guard frame.count >= 20 else { return .truncated("a Linux cooked v2 header") }
            return Self.etherType(frame.uint16(at: 0), at: start + 20)
        case .null, .loop:
            guard frame.count >= 4 else { return .truncated("a loopback header") }
            let big = frame.uint32(at: 0)
            let little = big.byteSwapped
            let family = self == .loop ? big : (big <= 0xffff ? big : little)
            switch family {
            case 2: return .ipv4(start + 4)
            // AF_INET6 differs between systems: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
            case 10, 24, 28, 30: return .ipv6(start + 4)
            default: return .other("address family \(family)")
            }
        }
    }

    private static func etherType(_ type: UInt16, at offset: Int) -> NetworkPayload {
        switch type {
        case 0x0800: return .ipv4(offset)
        case 0x86dd: return .ipv6(offset)
        case 0x0806: return .other("ARP")
        default: return .other("EtherType 0x\(String(type, radix: 16, uppercase: false))")
        }
    }
}

/// What a frame carries.
public enum NetworkPayload: Sendable, Hashable {
    /// IPv4 starting at this index of the record.
    case ipv4(Int)
    case ipv6(Int)
    /// Something that is not IP (ARP, another protocol): skipped, counted by name.
    case other(String)
    /// The record ends inside the named header.
    case truncated(String)
}

extension ArraySlice<UInt8> {
    /// A big-endian 16-bit value `offset` bytes into the slice; the caller has checked the length.
    func uint16(at offset: Int) -> UInt16 {
        let i = startIndex + offset
        return UInt16(self[i]) << 8 | UInt16(self[i + 1])
    }

    func uint32(at offset: Int) -> UInt32 {
        let i = startIndex + offset
        return UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3])
    }
}
