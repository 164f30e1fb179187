import EdgeModel
import NIOCore

/// A domain name as its labels. Compared and hashed without regard to ASCII case, byte by byte,
/// so a lookup allocates nothing.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// Labels as written (case kept for output), without the root.
    public let labels: [String]

    public static let root = DNSName(labels: [])

    public init(labels: [String]) {
        self.labels = labels
    }

    /// Parses `mail.example.net` or `mail.example.net.`; nil when a label is empty or too long,
    /// or the whole name is over 255 bytes on the wire.
    public init?(_ text: String) {
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        let labels = trimmed.isEmpty ? [] : trimmed.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard labels.allSatisfy({ (1...63).contains($0.utf8.count) }) else { return nil }
        self.init(labels: labels)
        guard wireLength <= 255 else { return nil }
    }

    /// Bytes on the wire, uncompressed: each label with its length byte, plus the root byte.
    public var wireLength: Int { labels.reduce(1) { $0 + 1 + $1.utf8.count } }

    static func fold(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    static func sameLabel(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8) { fold($0) == fold($1) }
    }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.labels.count == rhs.labels.count && zip(lhs.labels, rhs.labels).allSatisfy { sameLabel($0, $1) }
    }

    public func hash(into hasher: inout Hasher) {
        for label in labels {
            hasher.combine(label.utf8.count)
            for byte in label.utf8 { hasher.combine(Self.fold(byte)) }
        }
    }

    /// True when this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        labels.count >= other.labels.count && zip(labels.suffix(other.labels.count), other.labels).allSatisfy { Self.sameLabel($0, $1) }
    }

    /// True when the labels from `index` on are the same as `other`'s from `otherIndex` on.
    func suffix(from index: Int, equals other: DNSName, from otherIndex: Int) -> Bool {
        labels.count - index == other.labels.count - otherIndex
            && zip(labels[index...], other.labels[otherIndex...]).allSatisfy { Self.sameLabel($0, $1) }
    }

    /// Where an address's PTR record lives: `d.c.b.a.in-addr.arpa`, or the 32 nibbles of an
    /// IPv6 address under `ip6.arpa`.
    public static func reverse(of address: IPAddress) -> DNSName {
        if address.isIPv4 { return DNSName(labels: address.bytes.reversed().map(String.init) + ["in-addr", "arpa"]) }
        let nibbles = address.bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0xF, radix: 16)] }
        return DNSName(labels: nibbles.reversed() + ["ip6", "arpa"])
    }

    /// The name with its first label removed.
    public var parent: DNSName? { labels.isEmpty ? nil : DNSName(labels: Array(labels.dropFirst())) }

    public var description: String { labels.isEmpty ? "." : labels.joined(separator: ".") + "." }
}
