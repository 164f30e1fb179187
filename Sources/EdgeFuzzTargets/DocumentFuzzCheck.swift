import EdgeModel

/// Every file kind decoded from the same bytes: a clear error or a value, never a crash, and
/// within the documented limits. A scenario's referenced files are a small topology and an
/// application list, so its decoder gets past them.
enum DocumentFuzzCheck {
    static let limits = DocumentLimits(maxBytes: 64 << 10, maxDepth: 64, maxNodes: 20_000)

    static let topology = """
        name: small
        edge_nodes:
          - {name: edge-a, city: Paris, region: eu}
          - {name: edge-b}
        clients:
          - {name: client-1, ipv4: 198.18.1.1}
          - {name: client-2}
        origins:
          - {name: echo, kind: tcp-echo, ports: [7, 9000-9009]}
          - {name: mx, kind: smtp, proxy_protocol: v1, checks: [ptr]}
        links:
          - {between: [client-1, edge-a], latency: 2ms}
          - {between: [client-2, edge-b], rtt: 4ms}
          - {between: [edge-a, edge-b], rtt: 4ms}
          - {between: [edge-a, echo], rtt: 4ms}
          - {between: [edge-b, mx], rtt: 20ms}
        prefixes:
          - {prefix: 198.18.1.0/24, country: FR, asn: 64501}
        """

    static let applications = """
        - id: echo
          protocol: tcp/7
          dns: {type: CNAME, name: echo.example}
          origin_direct: ["tcp://echo:7"]
        """

    static let documents: [String: ConfigNode] = {
        var read: [String: ConfigNode] = [:]
        for (name, text) in [("topology.yaml", topology), ("apps.yaml", applications)] {
            read[name] = try? DocumentReader.read(Array(text.utf8), file: name)
        }
        return read
    }()

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let node = try? DocumentReader.read(bytes, file: "fuzz.yaml", limits: limits) else { return }
        for kind in ConfigKind.allCases {
            _ = ConfigLoader().decode(node, as: kind) { path in
                documents[path.split(separator: "/").last.map(String.init) ?? path] ?? documents["topology.yaml"]
            }
        }
    }
}
