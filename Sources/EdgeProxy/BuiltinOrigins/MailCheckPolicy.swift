import EdgeModel

/// What reverse DNS says about the address a mail connection comes from.
public enum ReverseDNS: Sendable, Hashable {
    /// PTR names, and whether one of them has an address record pointing back.
    case found(names: [String], confirmed: Bool)
    /// The address has no PTR record (NXDOMAIN or no data).
    case none
    /// The lookup did not complete (timeout, SERVFAIL): a temporary failure.
    case failed(String)
}

/// Decides, as MTAs do, whether a client may send mail: each configured check against the
/// reverse DNS of the client's address and the name it gave in HELO/EHLO. A missing or
/// unconfirmed name is a permanent refusal (5xx), a lookup that failed a temporary one (4xx).
public struct MailCheckPolicy: Sendable, Hashable {
    public var checks: [MailCheck]

    public init(checks: [MailCheck]) {
        self.checks = checks
    }

    public struct Refusal: Sendable, Hashable {
        public var check: MailCheck
        /// The whole reply line, e.g. `550 5.7.25 Client host rejected: ...`.
        public var reply: String
    }

    /// Nil when every check passes.
    public func refusal(client: IPAddress, reverse: ReverseDNS, helo: String?) -> Refusal? {
        let address = client.unmapped.description
        for check in checks {
            switch (check, reverse) {
            case (_, .failed(let why)):
                return Refusal(check: check, reply: "450 4.7.25 Client host rejected: reverse lookup of [\(address)] failed (\(why))")
            case (.ptr, .none), (.fcrdns, .none):
                return Refusal(check: check, reply: "550 5.7.25 Client host rejected: no PTR record for [\(address)]")
            case (.fcrdns, .found(let names, false)):
                return Refusal(
                    check: check,
                    reply: "550 5.7.25 Client host rejected: \(names.joined(separator: ", ")) does not resolve back to [\(address)]")
            case (.helo, _):
                let given = Self.normalized(helo ?? "")
                let names: [String]
                if case .found(let found, _) = reverse { names = found } else { names = [] }
                if !names.contains(where: { Self.normalized($0) == given }) {
                    let expected = names.isEmpty ? "it has no PTR record" : "its PTR name is \(names.joined(separator: ", "))"
                    return Refusal(
                        check: check,
                        reply: "550 5.7.1 <\(helo ?? "")>: Helo command rejected: not the name of [\(address)] (\(expected))")
                }
            case (.ptr, .found), (.fcrdns, .found(_, true)):
                continue
            }
        }
        return nil
    }

    static func normalized(_ name: String) -> String {
        var text = name.lowercased()
        while text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
