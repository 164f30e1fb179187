/// Where a value stands in a configuration file.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based; 0 when unknown.
    public var line: Int
    /// 1-based; 0 when unknown.
    public var column: Int

    public init(file: String, line: Int = 0, column: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        guard line > 0 else { return file }
        return column > 0 ? "\(file):\(line):\(column)" : "\(file):\(line)"
    }
}

/// One value of a parsed YAML or JSON document, with the place it came from.
///
/// Documents are read into this tree (not straight into `Codable` types) so that every error can
/// name the line it is about, and so that `off` stays the string it was written as.
public struct ConfigNode: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var keyLocation: SourceLocation
        public var value: ConfigNode
    }

    public enum Value: Sendable {
        /// A scalar exactly as written; `quoted` is false for plain scalars.
        case scalar(String, quoted: Bool)
        case sequence([ConfigNode])
        case mapping([Entry])
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// A plain `~`, `null` or empty scalar.
    public var isNull: Bool {
        if case .scalar(let text, quoted: false) = value {
            return ["", "~", "null", "Null", "NULL"].contains(text)
        }
        return false
    }

    public var scalar: String? {
        if case .scalar(let text, _) = value, !isNull { return text }
        return nil
    }

    public var sequence: [ConfigNode]? {
        if case .sequence(let items) = value { return items }
        return nil
    }

    public var entries: [Entry]? {
        if case .mapping(let entries) = value { return entries }
        return nil
    }

    public subscript(key: String) -> ConfigNode? {
        entries?.first { $0.key == key }?.value
    }

    /// "a string", "a list", ... for error messages.
    public var kindDescription: String {
        switch value {
        case .scalar where isNull: return "empty"
        case .scalar(let text, _): return "the value '\(text.prefix(40))'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}
