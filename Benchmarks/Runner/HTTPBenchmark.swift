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
        // Each side as it serves best: edgesim with a loop per core and with one loop (fewer
        // threads fighting wrk and the origin for two cores), HAProxy with its default of a
        // thread per core and with one thread.
        for (index, threads) in [nil, 1].enumerated() {
            let address = "127.0.0.\(11 + index)"
            let node = try PeerLauncher.run(
                edgesim,
                ["node", "--apps", appsFile.path, "--listen", address, "--name", "http-bench"]
                    + (threads.map { ["--threads", "\($0)"] } ?? []))
            try await PeerLauncher.ready([node]) { try await PeerLauncher.waitForListener(address, 20021) }
            peers.append((threads.map { "edgesim-\($0)t" } ?? "edgesim", "http://\(address):20021/", [node]))
        }
        if let binary = PeerLauncher.find("haproxy") {
            for (index, threads) in [nil, 1].enumerated() {
                let address = "127.0.0.\(13 + index)"
                let config = """
                    global
                      maxconn 8000
                    \(threads.map { "  nbthread \($0)" } ?? "")
                    defaults
                      mode http
                      option http-keep-alive
                      timeout connect 5s
                      timeout client 60s
                      timeout server 60s
                      timeout http-keep-alive 60s
                    listen web
                      bind \(address):20021
                      option forwardfor
                      http-reuse always
                      server origin 127.0.0.1:\(originPort)

                    """
                let file = folder.appendingPathComponent("haproxy-http-\(index).cfg")
                try config.write(to: file, atomically: true, encoding: .utf8)
                let process = try PeerLauncher.run(binary, ["-db", "-f", file.path])
                try await PeerLauncher.ready([process]) { try await PeerLauncher.waitForListener(address, 20021) }
                peers.append((threads.map { "haproxy-\($0)t" } ?? "haproxy", "http://\(address):20021/", [process]))
            }
        }
        var rates: [String: [Double]] = [:]
        for round in 1...rounds {
            for peer in peers {
                let before = cpuSeconds(peer.processes)
                let rate = try requestsPerSecond(wrk: wrk, url: peer.url, seconds: seconds, connections: connections)
                let used = cpuSeconds(peer.processes) - before
                rates[peer.name, default: []].append(rate)
                say(
                    String(
                        format: "round %d/%d: HTTP %@: %.0f requests/s, %.1f µs of CPU per request", round, rounds, peer.name, rate,
                        used / (rate * Double(seconds)) * 1e6))
            }
        }
        return (rates.mapValues { $0.sorted()[$0.count / 2] }, peers.map(\.name))
    }

    /// User and system CPU time the processes have used so far, with their children's: those
    /// running (nginx's workers) and those ended and reaped (socat's forks), from /proc/PID/stat.
    static func cpuSeconds(_ processes: [ChildProcess]) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        // After the name: state is field 3, parent 4, utime 14, stime 15, cutime 16, cstime 17.
        func fields(_ pid: Int32) -> [Substring]? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") else {
                return nil
            }
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            return fields.count > 14 ? fields : nil
        }
        var parents: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = fields(pid), let parent = Int32(stat[1]) else { continue }
            parents[parent, default: []].append(pid)
        }
        var total = 0.0
        var queue = processes.map(\.pid)
        while let pid = queue.popLast() {
            guard let stat = fields(pid) else { continue }
            total += [11, 12, 13, 14].compactMap { Double(stat[$0]) }.reduce(0, +) / ticks
            queue += parents[pid] ?? []
        }
        return total
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
