import EdgeModel

/// Hands out addresses from one prefix, each to one holder at a time, lowest free first. The
/// first address of the block (offset 0) is never given out.
public struct AddressPool: Sendable {
    public let prefix: IPPrefix
    private var used: Set<UInt128> = []
    private var next: UInt128 = 1

    public init(_ prefix: IPPrefix) {
        self.prefix = prefix
    }

    public var allocatedCount: Int { used.count }

    /// A free address, or nil when the pool is exhausted.
    public mutating func allocate() -> IPAddress? {
        let size = prefix.size
        guard size > 2 else { return nil }
        var offset = next
        for _ in 0..<min(size - 1, UInt128(used.count) + 1) {
            if offset >= size { offset = 1 }
            if !used.contains(offset), let address = prefix.address(at: offset) {
                used.insert(offset)
                next = offset + 1
                return address
            }
            offset += 1
        }
        return nil
    }

    /// Marks a specific address as taken (a static address); false when it is outside or taken.
    public mutating func reserve(_ address: IPAddress) -> Bool {
        guard let offset = offset(of: address), !used.contains(offset) else { return false }
        used.insert(offset)
        return true
    }

    public mutating func release(_ address: IPAddress) {
        if let offset = offset(of: address) { used.remove(offset) }
    }

    private func offset(of address: IPAddress) -> UInt128? {
        guard prefix.contains(address) else { return nil }
        switch (address.unmapped, prefix.address) {
        case (.v4(let value), .v4(let base)): return UInt128(value - base)
        case (.v6(let value), .v6(let base)): return value - base
        default: return nil
        }
    }
}
