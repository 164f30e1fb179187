/// One problem found in a configuration file: where, which field, and what to do about it.
public struct ConfigIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        case error
        case warning
    }

    public var location: SourceLocation
    /// Dotted path of the field, e.g. `apps[2].origin_direct[0]`; empty for the whole file.
    public var field: String
    public var message: String
    public var severity: Severity

    public init(_ message: String, field: String = "", at location: SourceLocation, severity: Severity = .error) {
        self.message = message
        self.field = field
        self.location = location
        self.severity = severity
    }

    public var description: String {
        let prefix = severity == .warning ? "warning: " : ""
        return field.isEmpty ? "\(location): \(prefix)\(message)" : "\(location): \(prefix)\(field): \(message)"
    }
}

/// Every error found in one or more files; thrown when any of them is an error.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]

    public init(_ issues: [ConfigIssue]) {
        self.issues = issues
    }

    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}

/// Collects issues while a document is decoded, so that one run reports all of them.
final class Diagnostics {
    private(set) var issues: [ConfigIssue] = []

    var hasErrors: Bool { issues.contains { $0.severity == .error } }
    var errorCount: Int { issues.count { $0.severity == .error } }

    func error(_ message: String, field: String, at location: SourceLocation) {
        issues.append(ConfigIssue(message, field: field, at: location))
    }

    func warning(_ message: String, field: String, at location: SourceLocation) {
        issues.append(ConfigIssue(message, field: field, at: location, severity: .warning))
    }

    func append(_ issue: ConfigIssue) {
        issues.append(issue)
    }
}
