/// Reads the fields of one mapping, reporting each wrong or missing value, and at the end every
/// key nobody asked for: unknown keys are errors, never silently ignored.
final class FieldReader {
    let node: ConfigNode
    let path: String
    let diagnostics: Diagnostics
    private var asked: Set<String> = []

    /// Nil, with an error reported, when `node` is not a mapping.
    init?(_ node: ConfigNode, path: String, _ diagnostics: Diagnostics, what: String = "a mapping of fields") {
        guard node.entries != nil else {
            diagnostics.error("must be \(what), found \(node.kindDescription)", field: path, at: node.location)
            return nil
        }
        self.node = node
        self.path = path
        self.diagnostics = diagnostics
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value under `key`; nil when absent or null. Reports a missing required field.
    func node(_ key: String, required: Bool = false) -> ConfigNode? {
        asked.insert(key)
        guard let value = node[key], !value.isNull else {
            if required { error("missing required field", field: key) }
            return nil
        }
        return value
    }

    func has(_ key: String) -> Bool {
        asked.insert(key)
        return node[key].map { !$0.isNull } ?? false
    }

    func location(of key: String) -> SourceLocation { node[key]?.location ?? node.location }

    func error(_ message: String, field key: String) {
        diagnostics.error(message, field: fieldPath(key), at: location(of: key))
    }

    func warning(_ message: String, field key: String) {
        diagnostics.warning(message, field: fieldPath(key), at: location(of: key))
    }

    func string(_ key: String, required: Bool = false) -> String? {
        guard let value = node(key, required: required) else { return nil }
        guard let text = value.scalar else {
            error("must be a string, found \(value.kindDescription)", field: key)
            return nil
        }
        return text
    }

    /// A scalar run through `parse`; its error becomes this field's error.
    func value<T>(_ key: String, required: Bool = false, _ parse: (String) -> Result<T, ValueError>) -> T? {
        guard let text = string(key, required: required) else { return nil }
        switch parse(text) {
        case .success(let value): return value
        case .failure(let problem):
            error(problem.message, field: key)
            return nil
        }
    }

    /// One of `choices` (compared case-insensitively); the error lists them.
    func choice<T>(_ key: String, _ choices: KeyValuePairs<String, T>, required: Bool = false) -> T? {
        value(key, required: required) { text in
            if let match = choices.first(where: { $0.key.lowercased() == text.lowercased() }) {
                return .success(match.value)
            }
            let names = choices.map { $0.key.isEmpty ? "\"\"" : $0.key }.joined(separator: ", ")
            return .failure(ValueError("'\(text)' is not one of: \(names)"))
        }
    }

    func bool(_ key: String) -> Bool? {
        value(key) { text in
            switch text.lowercased() {
            case "true", "yes", "on": return .success(true)
            case "false", "no", "off": return .success(false)
            default: return .failure(ValueError("must be true or false, found '\(text)'"))
            }
        }
    }

    func int(_ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        value(key, required: required) { text in
            guard let number = Int(text) else { return .failure(ValueError("must be a whole number, found '\(text)'")) }
            guard range.contains(number) else {
                return .failure(ValueError("must be \(range.lowerBound)-\(range.upperBound), found \(number)"))
            }
            return .success(number)
        }
    }

    func duration(_ key: String, required: Bool = false) -> Duration? {
        value(key, required: required, Quantity.duration)
    }

    /// The items of a list with their paths; a single scalar or mapping is not a list.
    func list(_ key: String, required: Bool = false) -> [(node: ConfigNode, path: String)]? {
        guard let value = node(key, required: required) else { return nil }
        guard let items = value.sequence else {
            error("must be a list, found \(value.kindDescription)", field: key)
            return nil
        }
        return items.enumerated().map { (node: $0.element, path: "\(fieldPath(key))[\($0.offset)]") }
    }

    /// A list of scalars parsed one by one; a single scalar is taken as a list of one.
    func scalars<T>(_ key: String, required: Bool = false, _ parse: (String) -> Result<T, ValueError>) -> [T]? {
        guard let value = node(key, required: required) else { return nil }
        let items = value.sequence ?? [value]
        var result: [T] = []
        for (index, item) in items.enumerated() {
            let field = value.sequence == nil ? fieldPath(key) : "\(fieldPath(key))[\(index)]"
            guard let text = item.scalar else {
                diagnostics.error("must be a string, found \(item.kindDescription)", field: field, at: item.location)
                continue
            }
            switch parse(text) {
            case .success(let parsed): result.append(parsed)
            case .failure(let problem): diagnostics.error(problem.message, field: field, at: item.location)
            }
        }
        return result
    }

    /// Marks keys as known without reading them.
    func ignore(_ keys: String...) {
        ignore(contentsOf: keys)
    }

    func ignore(contentsOf keys: [String]) {
        asked.formUnion(keys)
    }

    /// Reports every key that no reader asked for, with the nearest known key as a hint.
    func finish() {
        for entry in node.entries ?? [] where !asked.contains(entry.key) {
            var message = "unknown field '\(entry.key)'"
            if let hint = asked.sorted().min(by: { editDistance($0, entry.key) < editDistance($1, entry.key) }),
                editDistance(hint, entry.key) <= max(2, entry.key.count / 3)
            {
                message += " (did you mean '\(hint)'?)"
            } else {
                message += " (known fields: \(asked.sorted().joined(separator: ", ")))"
            }
            diagnostics.error(message, field: fieldPath(entry.key), at: entry.keyLocation)
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
