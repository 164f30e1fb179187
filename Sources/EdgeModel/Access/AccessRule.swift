/// An IP access rule, in the shape of the public IP Access Rules API:
/// `{mode: block, configuration: {target: ip_range, value: 198.18.10.0/24}}`.
public struct AccessRule: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case allow
        case block
    }

    public enum Target: Sendable, Hashable, CustomStringConvertible {
        case ip(IPAddress)
        case prefix(IPPrefix)
        /// ISO 3166-1 alpha-2, upper case.
        case country(String)
        case asn(UInt32)

        public var description: String {
            switch self {
            case .ip(let address): return "ip \(address)"
            case .prefix(let prefix): return "ip_range \(prefix)"
            case .country(let code): return "country \(code)"
            case .asn(let number): return "asn AS\(number)"
            }
        }
    }

    public var action: Action
    public var target: Target
    public var notes: String

    public init(action: Action, target: Target, notes: String = "") {
        self.action = action
        self.target = target
        self.notes = notes
    }
}

enum AccessRuleDecoder {
    /// Modes the API knows that an edge application does not act on: read, warned about, dropped.
    static let ignoredModes = ["challenge", "js_challenge", "managed_challenge"]

    static func decodeList(_ items: [(node: ConfigNode, path: String)], _ diagnostics: Diagnostics) -> [AccessRule] {
        items.compactMap { decode($0.node, path: $0.path, diagnostics) }
    }

    static func decode(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics) -> AccessRule? {
        guard let fields = FieldReader(node, path: path, diagnostics, what: "an access rule {mode, configuration}") else { return nil }
        defer { fields.finish() }
        fields.ignore("id", "created_on", "modified_on", "allowed_modes", "scope", "paused")
        let notes = fields.string("notes") ?? ""
        let mode = fields.string("mode", required: true)?.lowercased()
        let target = fields.node("configuration", required: true).flatMap {
            decodeTarget($0, path: fields.fieldPath("configuration"), diagnostics)
        }
        let action: AccessRule.Action
        switch mode {
        case "block": action = .block
        case "allow", "whitelist": action = .allow
        case let other? where ignoredModes.contains(other):
            fields.warning(
                "mode '\(other)' is not enforced by edge applications (only allow and block); this rule is ignored", field: "mode")
            return nil
        case let other?:
            fields.error("'\(other)' is not one of: block, allow, whitelist, \(ignoredModes.joined(separator: ", "))", field: "mode")
            return nil
        case nil:
            return nil
        }
        return target.map { AccessRule(action: action, target: $0, notes: notes) }
    }

    private static func decodeTarget(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics) -> AccessRule.Target? {
        guard let fields = FieldReader(node, path: path, diagnostics) else { return nil }
        defer { fields.finish() }
        let kind = fields.choice(
            "target", ["ip": "ip", "ip6": "ip6", "ip_range": "ip_range", "country": "country", "asn": "asn"], required: true)
        return fields.value("value", required: true) { text -> Result<AccessRule.Target, ValueError> in
            switch kind {
            case "ip", "ip6":
                guard let address = IPAddress(text), (kind == "ip") == address.unmapped.isIPv4 else {
                    return .failure(ValueError("'\(text)' is not an \(kind == "ip6" ? "IPv6" : "IPv4") address"))
                }
                return .success(.ip(address.unmapped))
            case "ip_range":
                return IPPrefix.parse(text).map { .prefix($0) }
            case "country":
                return CountryCode.parse(text).map { .country($0) }
            case "asn":
                return ASNumber.parse(text).map { .asn($0) }
            default:
                return .failure(ValueError("needs a valid target to be read"))
            }
        }
    }
}

enum CountryCode {
    static func parse(_ text: String) -> Result<String, ValueError> {
        let code = text.uppercased()
        guard code.count == 2, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            return .failure(ValueError("'\(text)' is not a two-letter country code (e.g. FR, US)"))
        }
        return .success(code)
    }
}

enum ASNumber {
    /// `64500` or `AS64500`.
    static func parse(_ text: String) -> Result<UInt32, ValueError> {
        let digits = text.uppercased().hasPrefix("AS") ? String(text.dropFirst(2)) : text
        guard let number = UInt32(digits), number > 0 else {
            return .failure(ValueError("'\(text)' is not an AS number (e.g. 64500 or AS64500)"))
        }
        return .success(number)
    }
}
