import NIOCore

/// A domain name as its labels. Compared without regard to ASCII case.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// Labels as written (case kept for output), without the root.
    public let labels: [String]
    private let folded: [String]

    public static let root = DNSName(labels: [])

    public init(labels: [String]) {
        self.labels = labels
        folded = labels.map { $0.lowercased() }
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

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool { lhs.folded == rhs.folded }
    public func hash(into hasher: inout Hasher) { hasher.combine(folded) }

    /// True when this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        folded.count >= other.folded.count && Array(folded.suffix(other.folded.count)) == other.folded
    }

    /// The name with its first label removed.
    public var parent: DNSName? { labels.isEmpty ? nil : DNSName(labels: Array(labels.dropFirst())) }

    public var description: String { labels.isEmpty ? "." : labels.joined(separator: ".") + "." }

    /// Lower-case labels from `index` on: the key compression uses for suffixes.
    func suffixKey(from index: Int) -> [String] { Array(folded[index...]) }
}
