#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address as a number, so prefixes and ordering are plain arithmetic.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no zone).
    public init?(_ text: some StringProtocol) {
        let string = String(text)
        if string.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, string, &raw) == 1 else { return nil }
            var value: UInt128 = 0
            withUnsafeBytes(of: &raw) { bytes in
                for byte in bytes { value = value << 8 | UInt128(byte) }
            }
            self = .v6(value)
        } else {
            // inet_pton accepts exactly four decimal parts; reject leading zeros, which some read as octal.
            let parts = string.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts.allSatisfy({ $0.count == 1 || !$0.hasPrefix("0") }) else { return nil }
            var raw = in_addr()
            guard inet_pton(AF_INET, string, &raw) == 1 else { return nil }
            self = .v4(UInt32(bigEndian: raw.s_addr))
        }
    }

    public init(bytes: some Collection<UInt8>) {
        if bytes.count == 4 {
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        } else {
            self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        }
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): return value >> 24 == 127
        case .v6(let value): return value == 1
        }
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// Bits in an address of this family.
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries.
    public var unmapped: IPAddress {
        if case .v6(let value) = self, value >> 32 == 0xffff { return .v4(UInt32(truncatingIfNeeded: value)) }
        return self
    }

    /// The address as IPv6: IPv4 becomes IPv4-mapped.
    public var mappedV6: UInt128 {
        switch self {
        case .v4(let value): return 0xffff << 32 | UInt128(value)
        case .v6(let value): return value
        }
    }

    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value): return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let value): return (0..<16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) }
        }
    }

    public var description: String {
        switch self {
        case .v4:
            return bytes.map(String.init).joined(separator: ".")
        case .v6:
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { target in
                for (index, byte) in bytes.enumerated() { target[index] = byte }
            }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil else { return "::" }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// The address as it goes into a URL or `host:port`: IPv6 in brackets.
    public var bracketed: String { isIPv4 ? description : "[\(description)]" }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v6(let a), .v6(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }
}

/// An address block such as `198.18.0.0/15` or `2001:db8::/32`.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// Parses `address/length`; a bare address is a single-address prefix. Host bits must be zero.
    public static func parse(_ text: String) -> Result<IPPrefix, ValueError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else {
            return .failure(ValueError("'\(text)' is not an IP address or CIDR block (e.g. 198.18.0.0/24 or 2001:db8::/48)"))
        }
        var length = address.bitWidth
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...address.bitWidth).contains(parsed) else {
                return .failure(ValueError("'\(text)' has a prefix length outside 0-\(address.bitWidth)"))
            }
            length = parsed
        }
        let prefix = IPPrefix(uncheckedAddress: address, length: length)
        guard prefix.address == address else {
            return .failure(ValueError("'\(text)' has host bits set; did you mean \(prefix)?"))
        }
        return .success(prefix)
    }

    /// The prefix holding `address`, with host bits cleared.
    public init(uncheckedAddress address: IPAddress, length: Int) {
        self.length = length
        switch address {
        case .v4(let value):
            let mask: UInt32 = length == 0 ? 0 : ~0 << (32 - length)
            self.address = .v4(value & mask)
        case .v6(let value):
            let mask: UInt128 = length == 0 ? 0 : ~0 << (128 - length)
            self.address = .v6(value & mask)
        }
    }

    /// True when `other` (IPv4-mapped counts as IPv4) lies in this block.
    public func contains(_ other: IPAddress) -> Bool {
        let candidate = address.isIPv4 ? other.unmapped : other
        guard candidate.isIPv4 == address.isIPv4 else { return false }
        return IPPrefix(uncheckedAddress: candidate, length: length).address == address
    }

    public func overlaps(_ other: IPPrefix) -> Bool {
        contains(other.address) || other.contains(address)
    }

    /// Number of addresses, saturated at `UInt128.max`.
    public var size: UInt128 {
        let hostBits = address.bitWidth - length
        return hostBits >= 128 ? .max : UInt128(1) << hostBits
    }

    /// The address `offset` places after the start of the block, if it is inside.
    public func address(at offset: UInt128) -> IPAddress? {
        guard offset < size else { return nil }
        switch address {
        case .v4(let value): return .v4(value + UInt32(offset))
        case .v6(let value): return .v6(value + offset)
        }
    }

    public var description: String { "\(address)/\(length)" }
}

/// Why a value could not be read; the caller adds file, line and field.
public struct ValueError: Error, Sendable, Hashable {
    public var message: String
    public init(_ message: String) { self.message = message }
}
