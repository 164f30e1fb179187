/// One port or an inclusive range of ports, 1-65535.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public let first: UInt16
    public let last: UInt16

    public init?(first: Int, last: Int) {
        guard (1...65535).contains(first), (1...65535).contains(last), first <= last else { return nil }
        self.first = UInt16(first)
        self.last = UInt16(last)
    }

    public init(port: UInt16) {
        first = port
        last = port
    }

    /// Parses `22` or `1000-2000`.
    public static func parse(_ text: String) -> Result<PortRange, ValueError> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let first = Int(parts[0]), let last = Int(parts.last!) else {
            return .failure(ValueError("'\(text)' is not a port or port range (e.g. 22 or 1000-2000)"))
        }
        guard (1...65535).contains(first), (1...65535).contains(last) else {
            return .failure(ValueError("ports must be 1-65535, got '\(text)'"))
        }
        guard let range = PortRange(first: first, last: last) else {
            return .failure(ValueError("range '\(text)' starts above its end"))
        }
        return .success(range)
    }

    public var count: Int { Int(last) - Int(first) + 1 }
    public var isSingle: Bool { first == last }

    public func contains(_ port: UInt16) -> Bool { (first...last).contains(port) }

    public func overlaps(_ other: PortRange) -> Bool { first <= other.last && other.first <= last }

    /// The port at the same offset in `target` as `port` has in this range; a single target port
    /// takes every port.
    public func map(_ port: UInt16, onto target: PortRange) -> UInt16? {
        guard contains(port) else { return nil }
        if target.isSingle { return target.first }
        let offset = Int(port) - Int(first)
        guard offset < target.count else { return nil }
        return UInt16(Int(target.first) + offset)
    }

    public var description: String { isSingle ? "\(first)" : "\(first)-\(last)" }
}
