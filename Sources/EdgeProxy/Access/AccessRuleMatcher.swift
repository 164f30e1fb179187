import EdgeModel

/// Decides whether a client address may use an application.
///
/// The most specific matching rule wins: a single IP, then a longer prefix, then an ASN, then a
/// country; at equal specificity `block` wins. No matching rule allows. Country and ASN come
/// from the topology's prefix table by longest match; IPv4-mapped IPv6 counts as IPv4.
public struct AccessRuleMatcher: Sendable {
    public struct Decision: Sendable, Hashable {
        public var allowed: Bool
        /// The rule that decided; nil when no rule matched.
        public var rule: AccessRule?
    }

    private let rules: [AccessRule]
    private let prefixes: [PrefixInfo]

    public init(rules: [AccessRule], prefixes: [PrefixInfo]) {
        self.rules = rules
        // Longest first, so the first containing row is the longest match.
        self.prefixes = prefixes.sorted { $0.prefix.length > $1.prefix.length }
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// The prefix-table row for an address, by longest match.
    public func origin(of address: IPAddress) -> PrefixInfo? {
        let client = address.unmapped
        return prefixes.first { $0.prefix.contains(client) }
    }

    public func decide(_ address: IPAddress) -> Decision {
        let client = address.unmapped
        let row = origin(of: client)
        var best: (rank: Int, rule: AccessRule)?
        for rule in rules {
            guard let rank = Self.rank(rule.target, client: client, row: row) else { continue }
            if let current = best, current.rank > rank || (current.rank == rank && current.rule.action == .block) { continue }
            best = (rank, rule)
        }
        guard let best else { return Decision(allowed: true, rule: nil) }
        return Decision(allowed: best.rule.action == .allow, rule: best.rule)
    }

    /// Specificity of a matching rule (higher is more specific), or nil when it does not match.
    /// IP and prefix rules rank above ASN (1), which ranks above country (0).
    static func rank(_ target: AccessRule.Target, client: IPAddress, row: PrefixInfo?) -> Int? {
        switch target {
        case .ip(let address):
            return address.unmapped == client ? 1000 : nil
        case .prefix(let prefix):
            return prefix.contains(client) ? 10 + prefix.length : nil
        case .asn(let number):
            return row?.asn == number ? 1 : nil
        case .country(let code):
            return row?.country == code ? 0 : nil
        }
    }
}
