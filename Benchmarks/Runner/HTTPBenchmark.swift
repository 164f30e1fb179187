import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation

/// HTTP requests per second through an http application against HAProxy in `mode http`, both
/// in front of the same keep-alive origin (edgesim's built-in one), with wrk as the load.
enum HTTPBenchmark {
    static func run(
        edgesim: String, folder: URL, originPort: Int, rounds: Int, seconds: Int, connections: Int, say: (String) -> Void
    ) async throws -> (rates: [String: Double], peers: [String])? {
        guard let wrk = PeerLauncher.find("wrk") else {
            say("wrk not installed (scripts/setup --benchmarks installs it): HTTP skipped")
            return nil
        }
        var peers: [(name: String, url: String, processes: [ChildProcess])] = []
        defer { for peer in peers { PeerLauncher.stop(peer.processes) } }
        let apps = """
            [{"id": "http", "protocol": "tcp/20021", "dns": {"type": "CNAME", "name": "http.bench.example"}, "origin_direct": ["tcp://127.0.0.1:\(originPort)"], "traffic_type": "http"}]
            """
        let appsFile = folder.appendingPathComponent("http-apps.json")
        try apps.write(to: appsFile, atomically: true, encoding: .utf8)
        let node = try PeerLauncher.run(edgesim, ["node", "--apps", appsFile.path, "--listen", "127.0.0.11", "--name", "http-bench"])
        try await PeerLauncher.ready([node]) { try await PeerLauncher.waitForListener("127.0.0.11", 20021) }
        peers.append(("edgesim", "http://127.0.0.11:20021/", [node]))
        if let binary = PeerLauncher.find("haproxy") {
            let config = """
                global
                  maxconn 8000
                defaults
                  mode http
                  option http-keep-alive
                  timeout connect 5s
                  timeout client 60s
                  timeout server 60s
                  timeout http-keep-alive 60s
                listen web
                  bind 127.0.0.12:20021
                  option forwardfor
                  http-reuse always
                  server origin 127.0.0.1:\(originPort)

                """
            let file = folder.appendingPathComponent("haproxy-http.cfg")
            try config.write(to: file, atomically: true, encoding: .utf8)
            let process = try PeerLauncher.run(binary, ["-db", "-f", file.path])
            try await PeerLauncher.ready([process]) { try await PeerLauncher.waitForListener("127.0.0.12", 20021) }
            peers.append(("haproxy", "http://127.0.0.12:20021/", [process]))
        }
        var rates: [String: [Double]] = [:]
        for round in 1...rounds {
            for peer in peers {
                let rate = try requestsPerSecond(wrk: wrk, url: peer.url, seconds: seconds, connections: connections)
                rates[peer.name, default: []].append(rate)
                say(String(format: "round %d/%d: HTTP %@: %.0f requests/s", round, rounds, peer.name, rate))
            }
        }
        return (rates.mapValues { $0.sorted()[$0.count / 2] }, peers.map(\.name))
    }

    /// wrk's `Requests/sec` for `seconds` with `connections` kept-alive connections on 2 threads.
    static func requestsPerSecond(wrk: String, url: String, seconds: Int, connections: Int) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrk)
        process.arguments = ["-t2", "-c\(connections)", "-d\(seconds)s", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: try pipe.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let rate = Double(line.split(separator: " ").last ?? "")
        else { throw BenchError("wrk said: \(output)") }
        if let errors = output.split(separator: "\n").first(where: { $0.contains("Non-2xx") || $0.contains("Socket errors") }) {
            throw BenchError("wrk against \(url): \(errors)")
        }
        return rate
    }
}
