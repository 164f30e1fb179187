import Foundation

/// The three kinds of file edgesim reads.
public enum ConfigKind: String, Sendable, CaseIterable {
    case applications
    case topology
    case scenario
}

/// A value read from files, with the warnings found on the way.
public struct Loaded<Value: Sendable>: Sendable {
    public var value: Value
    public var warnings: [ConfigIssue]

    public init(value: Value, warnings: [ConfigIssue]) {
        self.value = value
        self.warnings = warnings
    }
}

/// What `validate` learns about one file.
public struct ValidationResult: Sendable {
    public var file: String
    public var kind: ConfigKind?
    public var issues: [ConfigIssue]
    /// One line about what the file holds, when it is valid.
    public var summary: String

    public var isValid: Bool { !issues.contains { $0.severity == .error } }
}

/// Reads configuration files from disk, safely: size is checked before reading, and every
/// problem, in this file or one it refers to, is reported with its place.
public struct ConfigLoader: Sendable {
    public var limits: DocumentLimits

    public init(limits: DocumentLimits = DocumentLimits()) {
        self.limits = limits
    }

    /// Applications on their own, as `edgesim node` serves them: origins must be IP addresses,
    /// unless `topologyHosts` (a fleet, which resolves a topology's origin names).
    public func loadApplications(_ path: String, topologyHosts: Bool = false) throws(ConfigErrors) -> Loaded<[Application]> {
        try load(path) { root, diagnostics in
            let apps = ApplicationDecoder.decodeFile(root, path: "", diagnostics)
            if !topologyHosts { Self.reportTopologyHosts(apps, diagnostics, severity: .error) }
            return apps
        }
    }

    /// One application object from bytes (JSON or YAML, e.g. an API request's body), checked as
    /// a file's would be and against the applications already there (ids, names and static
    /// addresses on overlapping ports). `source` names it in messages. Origins may name topology
    /// hosts when `topologyHosts` allows (a fleet resolves them).
    public func decodeApplication(
        _ bytes: [UInt8], source: String, alongside existing: [Application], topologyHosts: Bool = false
    ) throws(ConfigErrors) -> Application {
        let diagnostics = Diagnostics()
        let root: ConfigNode
        do {
            root = try DocumentReader.read(bytes, file: source, limits: limits)
        } catch {
            throw ConfigErrors([error])
        }
        guard let app = ApplicationDecoder.decode(root, path: "", diagnostics) else { throw ConfigErrors(diagnostics.issues) }
        if !topologyHosts { Self.reportTopologyHosts([app], diagnostics, severity: .error) }
        ApplicationDecoder.checkConflicts(existing.map { ($0, "") } + [(app, "")], diagnostics)
        guard !diagnostics.hasErrors else { throw ConfigErrors(diagnostics.issues) }
        return app
    }

    /// Origins named by topology host are resolved only inside a scenario.
    static func reportTopologyHosts(_ apps: [Application], _ diagnostics: Diagnostics, severity: ConfigIssue.Severity) {
        for app in apps {
            guard case .direct(let addresses) = app.origin else { continue }
            for case .topologyHost(let name) in addresses.map(\.host) {
                diagnostics.append(
                    ConfigIssue(
                        "'\(name)' is a topology origin name, which only a scenario can resolve; outside one, give an IP address",
                        field: "origin_direct", at: app.location, severity: severity))
            }
        }
    }

    /// Access rules: a list, or a saved IP Access Rules API response (`{"result": [...]}`).
    public func loadAccessRules(_ path: String) throws(ConfigErrors) -> Loaded<[AccessRule]> {
        try load(path) { root, diagnostics in
            let items = root.sequence ?? root["result"]?.sequence
            guard let items else {
                diagnostics.error("must be a list of access rules, or an API response with a result list", field: "", at: root.location)
                return nil
            }
            return AccessRuleDecoder.decodeList(items.enumerated().map { ($0.element, "[\($0.offset)]") }, diagnostics)
        }
    }

    /// A prefix table: a list of `{prefix, country, asn}` rows.
    public func loadPrefixes(_ path: String) throws(ConfigErrors) -> Loaded<[PrefixInfo]> {
        try load(path) { root, diagnostics in
            guard let items = root.sequence else {
                diagnostics.error("must be a list of {prefix, country, asn} rows", field: "", at: root.location)
                return nil
            }
            return items.enumerated().compactMap { TopologyDecoder.decodePrefix($0.element, path: "[\($0.offset)]", diagnostics) }
        }
    }

    public func loadTopology(_ path: String) throws(ConfigErrors) -> Loaded<Topology> {
        try load(path) { root, diagnostics in TopologyDecoder.decode(root, diagnostics) }
    }

    public func loadScenario(_ path: String) throws(ConfigErrors) -> Loaded<Scenario> {
        try load(path) { root, diagnostics in scenarioDecoder(for: path, diagnostics).decode(root) }
    }

    /// Reads a file of any kind (told by its content unless `kind` is given) and reports on it.
    public func validate(_ path: String, as kind: ConfigKind? = nil) -> ValidationResult {
        let diagnostics = Diagnostics()
        guard let root = readDocument(path, diagnostics) else {
            return ValidationResult(file: path, kind: kind, issues: diagnostics.issues, summary: "")
        }
        let kind = kind ?? Self.detectKind(root)
        var summary = ""
        switch kind {
        case .applications:
            let apps = ApplicationDecoder.decodeFile(root, path: "", diagnostics)
            Self.reportTopologyHosts(apps, diagnostics, severity: .warning)
            summary = plural(apps.count, "application")
        case .topology:
            if let topology = TopologyDecoder.decode(root, diagnostics) {
                summary =
                    "topology '\(topology.name)': \(plural(topology.edgeNodes.count, "edge node")), \(plural(topology.clients.count, "client")), \(plural(topology.origins.count, "origin")), \(plural(topology.links.count, "link"))"
            }
        case .scenario:
            if let scenario = scenarioDecoder(for: path, diagnostics).decode(root) {
                summary =
                    "scenario '\(scenario.name)' on topology '\(scenario.topology.name)': \(plural(scenario.applications.count, "application")), \(plural(scenario.timeline.count, "step")), \(plural(scenario.expectations.count, "check"))"
            }
        }
        return ValidationResult(file: path, kind: kind, issues: diagnostics.issues, summary: summary)
    }

    /// Decodes a document already read, as `kind`, without touching files: a scenario's
    /// referenced files come from `documents` (by path). Returns the issues found. The same
    /// decoders as loading by path; this is how they are fuzzed by bytes.
    public func decode(_ root: ConfigNode, as kind: ConfigKind, documents: @escaping (String) -> ConfigNode? = { _ in nil })
        -> [ConfigIssue]
    {
        let diagnostics = Diagnostics()
        switch kind {
        case .applications:
            _ = ApplicationDecoder.decodeFile(root, path: "", diagnostics)
            if let items = root.sequence ?? root["result"]?.sequence {
                _ = AccessRuleDecoder.decodeList(items.enumerated().map { ($0.element, "[\($0.offset)]") }, diagnostics)
                _ = items.enumerated().compactMap { TopologyDecoder.decodePrefix($0.element, path: "[\($0.offset)]", diagnostics) }
            }
        case .topology:
            _ = TopologyDecoder.decode(root, diagnostics)
        case .scenario:
            let decoder = ScenarioDecoder(
                diagnostics: diagnostics, loadDocument: documents, resolvePath: { $0 }, fileExists: { documents($0) != nil })
            _ = decoder.decode(root)
        }
        return diagnostics.issues
    }

    /// What a file clearly is, for telling a user who gave the wrong kind of file what to run
    /// instead: a topology (`edge_nodes`), a scenario (`topology` or `timeline`), or applications
    /// (a list, a saved API response, or one object with `protocol`); nil when unreadable or unclear.
    public func evidentKind(of path: String) -> ConfigKind? {
        guard let root = readDocument(path, Diagnostics()) else { return nil }
        if root.sequence != nil || root["result"] != nil || root["protocol"] != nil { return .applications }
        let kind = Self.detectKind(root)
        return kind == .applications ? nil : kind
    }

    /// A mapping with `edge_nodes` is a topology, one with `topology` a scenario; anything
    /// else is read as applications.
    public static func detectKind(_ root: ConfigNode) -> ConfigKind {
        if root["edge_nodes"] != nil { return .topology }
        if root["topology"] != nil || root["timeline"] != nil { return .scenario }
        return .applications
    }

    private func load<T>(_ path: String, _ decode: (ConfigNode, Diagnostics) -> T?) throws(ConfigErrors) -> Loaded<T> {
        let diagnostics = Diagnostics()
        let value = readDocument(path, diagnostics).flatMap { decode($0, diagnostics) }
        guard let value, !diagnostics.hasErrors else {
            var issues = diagnostics.issues
            if issues.isEmpty { issues = [ConfigIssue("could not be read", at: SourceLocation(file: path))] }
            throw ConfigErrors(issues)
        }
        return Loaded(value: value, warnings: diagnostics.issues)
    }

    private func scenarioDecoder(for path: String, _ diagnostics: Diagnostics) -> ScenarioDecoder {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        return ScenarioDecoder(
            diagnostics: diagnostics,
            loadDocument: { readDocument($0, diagnostics) },
            resolvePath: { $0.hasPrefix("/") ? $0 : folder.appendingPathComponent($0).standardizedFileURL.path },
            fileExists: { Self.regularFileSize($0) != nil })
    }

    func readDocument(_ path: String, _ diagnostics: Diagnostics) -> ConfigNode? {
        let whole = SourceLocation(file: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            diagnostics.error("no such file", field: "", at: whole)
            return nil
        }
        guard !isDirectory.boolValue, let size = Self.regularFileSize(path) else {
            diagnostics.error("is not a regular file", field: "", at: whole)
            return nil
        }
        guard size <= limits.maxBytes else {
            diagnostics.error("file is \(size) bytes; the limit is \(limits.maxBytes) bytes", field: "", at: whole)
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            diagnostics.error("cannot be read (permissions?)", field: "", at: whole)
            return nil
        }
        do {
            return try DocumentReader.read(Array(data), file: path, limits: limits)
        } catch {
            diagnostics.append(error)
            return nil
        }
    }

    static func regularFileSize(_ path: String) -> Int? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular
        else { return nil }
        return (attributes[.size] as? NSNumber)?.intValue
    }
}

/// "1 link", "3 links".
func plural(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
