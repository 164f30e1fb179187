import EdgeModel
import Foundation

/// A fresh folder per test, removed when the value goes away.
final class Scratch {
    let folder: URL

    init() {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        write(name, Data(text.utf8))
    }

    @discardableResult
    func write(_ name: String, _ data: Data) -> String {
        let url = folder.appendingPathComponent(name)
        try! FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try! data.write(to: url)
        return url.path
    }

    /// Validates `text` as a file of `kind` and returns what was found.
    func validate(_ text: String, as kind: ConfigKind, name: String = "input.yaml") -> ValidationResult {
        ConfigLoader().validate(write(name, text), as: kind)
    }
}

extension ValidationResult {
    var errors: [ConfigIssue] { issues.filter { $0.severity == .error } }
    var warnings: [ConfigIssue] { issues.filter { $0.severity == .warning } }

    /// The single error, or a description of what was found instead.
    func onlyError() -> ConfigIssue? { errors.count == 1 ? errors[0] : nil }
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A minimal valid topology the scenario tests build on.
let smallTopology = """
    name: small
    edge_nodes:
      - {name: edge-a, city: Paris}
      - {name: edge-b, city: London}
    clients:
      - {name: client-1, ipv4: 198.18.1.1}
      - {name: client-2}
    origins:
      - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}
      - {name: mx, kind: smtp, proxy_protocol: v1}
    links:
      - {between: [edge-a, edge-b], rtt: 9ms}
      - {between: [client-1, edge-a], latency: 2ms, jitter: 1ms, loss: 0.5%}
      - {between: [client-2, edge-b], rtt: 4ms}
      - {between: [edge-a, echo], rtt: 20ms, bandwidth: 1gbit}
      - {between: [edge-b, mx], rtt: 20ms}
    prefixes:
      - {prefix: 198.18.1.0/24, country: FR, asn: 64501}
    """
