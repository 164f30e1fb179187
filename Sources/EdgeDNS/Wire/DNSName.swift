import EdgeModel
import NIOCore

/// A domain name as its labels, each the bytes it has on the wire: any byte may appear in a
/// label (RFC 2181), so names are never decoded into text to be compared or echoed. Compared
/// and hashed without regard to ASCII case, byte by byte, so a lookup allocates nothing.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// Labels as on the wire (case kept), without the root.
    public let wireLabels: [[UInt8]]

    public static let root = DNSName(wireLabels: [])

    public init(wireLabels: [[UInt8]]) {
        self.wireLabels = wireLabels
    }

    /// Labels given as text, each its UTF-8 bytes.
    public init(labels: [String]) {
        self.init(wireLabels: labels.map { Array($0.utf8) })
    }

    /// Parses `mail.example.net` or `mail.example.net.`; nil when a label is empty or too long,
    /// or the whole name is over 255 bytes on the wire.
    public init?(_ text: String) {
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        let labels = trimmed.isEmpty ? [] : trimmed.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard labels.allSatisfy({ (1...63).contains($0.count) }) else { return nil }
        self.init(wireLabels: labels)
        guard wireLength <= 255 else { return nil }
    }

    /// Labels as text for people: bytes that are not printable ASCII, and dots inside a label,
    /// are written `\DDD` and `\.` as in zone files.
    public var labels: [String] { wireLabels.map(Self.text) }

    static func text(_ label: [UInt8]) -> String {
        var text = ""
        for byte in label {
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x21...0x7E: text.unicodeScalars.append(UnicodeScalar(byte))
            default: text += "\\" + String(repeating: "0", count: byte < 10 ? 2 : byte < 100 ? 1 : 0) + String(byte)
            }
        }
        return text
    }

    /// Bytes on the wire, uncompressed: each label with its length byte, plus the root byte.
    public var wireLength: Int { wireLabels.reduce(1) { $0 + 1 + $1.count } }

    static func fold(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    static func sameLabel(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && a.elementsEqual(b) { fold($0) == fold($1) }
    }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.wireLabels.count == rhs.wireLabels.count && zip(lhs.wireLabels, rhs.wireLabels).allSatisfy { sameLabel($0, $1) }
    }

    public func hash(into hasher: inout Hasher) {
        for label in wireLabels {
            hasher.combine(label.count)
            for byte in label { hasher.combine(Self.fold(byte)) }
        }
    }

    /// True when this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        wireLabels.count >= other.wireLabels.count
            && zip(wireLabels.suffix(other.wireLabels.count), other.wireLabels).allSatisfy { Self.sameLabel($0, $1) }
    }

    /// True when the labels from `index` on are the same as `other`'s from `otherIndex` on.
    func suffix(from index: Int, equals other: DNSName, from otherIndex: Int) -> Bool {
        wireLabels.count - index == other.wireLabels.count - otherIndex
            && zip(wireLabels[index...], other.wireLabels[otherIndex...]).allSatisfy { Self.sameLabel($0, $1) }
    }

    /// Where an address's PTR record lives: `d.c.b.a.in-addr.arpa`, or the 32 nibbles of an
    /// IPv6 address under `ip6.arpa`.
    public static func reverse(of address: IPAddress) -> DNSName {
        if address.isIPv4 { return DNSName(labels: address.bytes.reversed().map(String.init) + ["in-addr", "arpa"]) }
        let nibbles = address.bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0xF, radix: 16)] }
        return DNSName(labels: nibbles.reversed() + ["ip6", "arpa"])
    }

    /// The name with its first label removed.
    public var parent: DNSName? { wireLabels.isEmpty ? nil : DNSName(wireLabels: Array(wireLabels.dropFirst())) }

    /// The name as text without the final dot, e.g. `mail.example.net` (escaped as `labels`).
    public var text: String { labels.joined(separator: ".") }

    public var description: String { wireLabels.isEmpty ? "." : text + "." }
}
