import Foundation

/// How fast `edgesim up` brings a fleet of N edge nodes up, and how much memory the nodes take
/// (their node-host processes' resident memory over the number of nodes), for a few fleet sizes
/// and each mode.
enum FleetBenchmark {
    struct Result {
        var nodes: Int
        var mode: String
        /// From starting `edgesim up` until it said the fleet was up.
        var seconds: Double
        /// Resident memory of the node processes, over the number of nodes.
        var megabytesPerNode: Double
        var nodeProcesses: Int
        /// Runner and node processes together.
        var fleetMegabytes: Double
        /// Resident memory of the runner (fabric or links, DNS, origins).
        var runnerMegabytes: Double
        var teardownSeconds: Double
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// N edges; one client linked to the four nearest, one origin linked to every edge.
    static func topology(nodes: Int) -> String {
        var text = "name: fleet-\(nodes)\nedge_nodes:\n"
        for index in 1...nodes { text += "  - {name: e\(index)}\n" }
        text += "clients:\n  - {name: c1}\norigins:\n  - {name: o1, kind: tcp-echo, ports: [8000]}\nlinks:\n"
        for index in 1...nodes {
            if index <= 4 { text += "  - {between: [c1, e\(index)], rtt: \(10 + index)ms}\n" }
            text += "  - {between: [e\(index), o1], rtt: 20ms}\n"
        }
        return text
    }

    static let apps = """
        - id: api
          protocol: tcp/8000
          dns: {type: CNAME, name: api.bench.example}
          origin_direct: ["tcp://o1:8000"]
        """

    static func run(edgesim: String, folder: URL, nodes: Int, mode: String, deadline: Double) throws -> Result {
        let topologyFile = folder.appendingPathComponent("fleet-\(nodes).yaml")
        let appsFile = folder.appendingPathComponent("fleet-apps.yaml")
        let ready = folder.appendingPathComponent("ready-\(nodes)-\(mode)")
        try topology(nodes: nodes).write(to: topologyFile, atomically: true, encoding: .utf8)
        try apps.write(to: appsFile, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(at: ready)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: edgesim)
        process.arguments = [
            "up", topologyFile.path, "--apps", appsFile.path, "--mode", mode, "--dns-port", "5300", "--ready-file", ready.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let started = Date()
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        while !FileManager.default.fileExists(atPath: ready.path) {
            guard process.isRunning else { throw Failure(description: "edgesim up exited with \(process.terminationStatus)") }
            guard Date().timeIntervalSince(started) < deadline else { throw Failure(description: "not up within \(deadline) s") }
            usleep(5_000)
        }
        let seconds = Date().timeIntervalSince(started)
        let children = childPIDs(of: process.processIdentifier)
        let nodeMemory = children.map(residentMegabytes).reduce(0, +)
        let runnerMemory = residentMegabytes(process.processIdentifier)
        let stopping = Date()
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        return Result(
            nodes: nodes, mode: mode, seconds: seconds, megabytesPerNode: nodeMemory / Double(nodes), nodeProcesses: children.count,
            fleetMegabytes: nodeMemory + runnerMemory, runnerMegabytes: runnerMemory, teardownSeconds: Date().timeIntervalSince(stopping))
    }

    static func childPIDs(of pid: Int32) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { candidate in
            status(candidate)?.split(separator: "\n").contains {
                $0.hasPrefix("PPid:") && $0.dropFirst(5).trimmingCharacters(in: .whitespaces) == "\(pid)"
            }
                ?? false
        }
    }

    static func residentMegabytes(_ pid: Int32) -> Double {
        guard let line = status(pid)?.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        let kilobytes = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "0") ?? 0
        return kilobytes / 1024
    }

    static func status(_ pid: Int32) -> String? {
        try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    }
}
