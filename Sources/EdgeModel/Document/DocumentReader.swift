import CYaml

/// Bounds that keep a hostile document from using unbounded time or memory.
public struct DocumentLimits: Sendable, Hashable {
    /// Largest file accepted, in bytes. Default 4 MiB: real configurations are a few KiB.
    public var maxBytes: Int = 4 << 20
    /// Deepest nesting of lists and mappings. Default 64.
    public var maxDepth: Int = 64
    /// Most values in the document, counting every value an alias repeats. Default 200,000.
    public var maxNodes: Int = 200_000

    public init(maxBytes: Int = 4 << 20, maxDepth: Int = 64, maxNodes: Int = 200_000) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
    }
}

/// Reads one YAML or JSON document into a `ConfigNode` tree, driving libyaml's event parser
/// directly so that depth, size and alias expansion are checked while reading, not after.
public enum DocumentReader {
    public static func read(
        _ bytes: [UInt8], file: String, limits: DocumentLimits = DocumentLimits()
    ) throws(ConfigIssue) -> ConfigNode {
        let whole = SourceLocation(file: file)
        guard bytes.count <= limits.maxBytes else {
            throw ConfigIssue(
                "file is \(bytes.count) bytes; the limit is \(limits.maxBytes) bytes", at: whole)
        }
        var builder = TreeBuilder(file: file, limits: limits)
        let result: Result<ConfigNode, ConfigIssue> = bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                return .failure(ConfigIssue("could not start the YAML parser", at: whole))
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    return .failure(parserIssue(parser, file: file))
                }
                defer { yaml_event_delete(&event) }
                do throws(ConfigIssue) {
                    if let done = try builder.consume(event) { return .success(done) }
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    private static func parserIssue(_ parser: yaml_parser_t, file: String) -> ConfigIssue {
        let problem = parser.problem.map { String(cString: $0) } ?? "malformed document"
        var message = problem
        if let context = parser.context.map({ String(cString: $0) }) {
            message = "\(problem) (\(context))"
        }
        let mark = parser.problem_mark
        return ConfigIssue(
            "not valid YAML or JSON: \(message)",
            at: SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1))
    }
}

/// Builds the tree from parser events with an explicit stack: no recursion, so depth is only
/// what the limits allow. Each open collection grows in place on the stack and mapping keys
/// are checked for duplicates by hash, so reading takes time linear in the document's size.
private struct TreeBuilder {
    private struct Frame {
        let isMapping: Bool
        let location: SourceLocation
        let anchor: String?
        var items: [ConfigNode] = []
        var entries: [ConfigNode.Entry] = []
        /// Keys seen in this mapping, with the line of each.
        var keys: [String: Int] = [:]
        var pendingKey: ConfigNode?
        /// Values inside, itself included (an alias to it counts them all again).
        var size = 1
    }

    let file: String
    let limits: DocumentLimits
    private var stack: [Frame] = []
    private var anchors: [String: (node: ConfigNode, size: Int)] = [:]
    private var totalNodes = 0
    private var root: ConfigNode?
    private var documents = 0

    init(file: String, limits: DocumentLimits) {
        self.file = file
        self.limits = limits
    }

    private func location(_ mark: yaml_mark_t) -> SourceLocation {
        SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    /// Returns the root once the stream has ended.
    mutating func consume(_ event: yaml_event_t) throws(ConfigIssue) -> ConfigNode? {
        let here = location(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
            return nil
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw ConfigIssue("file holds more than one YAML document; put each in its own file", at: here)
            }
            return nil
        case YAML_STREAM_END_EVENT:
            guard let root else { throw ConfigIssue("file is empty", at: SourceLocation(file: file)) }
            return root
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text: String
            if let value = scalar.value {
                text = String(decoding: UnsafeBufferPointer(start: value, count: Int(scalar.length)), as: UTF8.self)
            } else {
                text = ""
            }
            let node = ConfigNode(.scalar(text, quoted: scalar.style != YAML_PLAIN_SCALAR_STYLE), at: here)
            try count(1, at: here)
            try add(node, size: 1, anchor: string(scalar.anchor))
        case YAML_ALIAS_EVENT:
            let name = string(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                throw ConfigIssue("alias *\(name) refers to no anchor defined before it", at: here)
            }
            try count(target.size, at: here)
            try add(target.node, size: target.size, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
            try push(Frame(isMapping: false, location: here, anchor: string(event.data.sequence_start.anchor)))
        case YAML_MAPPING_START_EVENT:
            try push(Frame(isMapping: true, location: here, anchor: string(event.data.mapping_start.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            let frame = stack.removeLast()
            let node = ConfigNode(frame.isMapping ? .mapping(frame.entries) : .sequence(frame.items), at: frame.location)
            try add(node, size: frame.size, anchor: frame.anchor)
        default:
            return nil
        }
        return nil
    }

    private mutating func push(_ frame: Frame) throws(ConfigIssue) {
        try count(1, at: frame.location)
        guard stack.count < limits.maxDepth else {
            throw ConfigIssue("nesting is deeper than \(limits.maxDepth) levels", at: frame.location)
        }
        stack.append(frame)
    }

    private mutating func add(_ node: ConfigNode, size: Int, anchor: String?) throws(ConfigIssue) {
        if let anchor { anchors[anchor] = (node, size) }
        guard !stack.isEmpty else {
            root = node
            return
        }
        let top = stack.count - 1
        stack[top].size += size
        guard stack[top].isMapping else {
            stack[top].items.append(node)
            return
        }
        if let key = stack[top].pendingKey {
            stack[top].entries.append(ConfigNode.Entry(key: key.scalar ?? "", keyLocation: key.location, value: node))
            stack[top].pendingKey = nil
            return
        }
        guard case .scalar(let text, _) = node.value else {
            throw ConfigIssue("a mapping key must be a plain string, not \(node.kindDescription)", at: node.location)
        }
        if let line = stack[top].keys[text] {
            throw ConfigIssue("key '\(text)' appears twice in one mapping (first at line \(line))", at: node.location)
        }
        stack[top].keys[text] = node.location.line
        stack[top].pendingKey = node
    }

    /// Counts values as they arrive; an alias counts every value it repeats.
    private mutating func count(_ values: Int, at location: SourceLocation) throws(ConfigIssue) {
        totalNodes += values
        guard totalNodes <= limits.maxNodes else {
            throw ConfigIssue(
                "document expands to more than \(limits.maxNodes) values (through aliases or sheer size)",
                at: location)
        }
    }
}
