import EdgeModel
import EdgePcap
import Foundation

/// Capture replay: packets a second at speed 0 through a running fleet, next to tcpreplay
/// --topspeed sending the same capture's packets (raw, no sessions) inside a scratch network
/// namespace; and how late sends go at speed 1.
enum ReplayBenchmark {
    struct Result {
        var packets: Int
        var edgesimPacketsPerSecond: Double
        var tcpreplayPacketsPerSecond: Double?
        var timingP50: Double
        var timingP99: Double
        var timingMax: Double
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// One edge between the client and the echo origins, 0.2 ms each way: the replay's rate is
    /// then the replayer's and the fleet's, not the round trips of an emulated continent.
    static let topology = """
        name: replay-bench
        edge_nodes:
          - {name: edge}
        clients:
          - {name: paris}
        origins:
          - {name: echo, kind: tcp-echo, ports: [7]}
          - {name: udp-echo, kind: udp-echo, ports: [7]}
        links:
          - {between: [paris, edge], rtt: 0.2ms}
          - {between: [edge, echo], rtt: 0.2ms}
          - {between: [edge, udp-echo], rtt: 0.2ms}
        """

    static let apps = """
        - id: echo-tcp
          protocol: tcp/7
          dns: {type: CNAME, name: echo.bench.example}
          origin_direct: ["tcp://echo:7"]
        - id: echo-udp
          protocol: udp/7
          dns: {type: CNAME, name: udp.bench.example}
          origin_direct: ["udp://udp-echo:7"]
        """

    static func files(_ folder: URL) throws -> (topology: URL, apps: URL) {
        let topologyFile = folder.appendingPathComponent("replay-bench-topology.yaml")
        let appsFile = folder.appendingPathComponent("replay-bench-apps.yaml")
        try topology.write(to: topologyFile, atomically: true, encoding: .utf8)
        try apps.write(to: appsFile, atomically: true, encoding: .utf8)
        return (topologyFile, appsFile)
    }

    /// Records a capture of real traffic through the fleet (loopback mode, `--capture`): UDP
    /// echo datagrams and TCP echo connections from Paris.
    /// `rate`: UDP flows a second (nil: as fast as the generator goes).
    static func record(edgesim: String, folder: URL, flows: Int, rate: Int? = nil) throws -> URL {
        let file = folder.appendingPathComponent("replay-bench-\(rate.map(String.init) ?? "full").pcapng")
        let scenario = folder.appendingPathComponent("replay-record.yaml")
        let pace = rate.map { ", rate: \($0)/s" } ?? ""
        let (topologyFile, appsFile) = try files(folder)
        try """
        name: replay-record
        topology: \(topologyFile.path)
        timeout: 120s
        app_files: [\(appsFile.path)]
        timeline:
          - at: 0s
            traffic: {from: paris, app: echo-udp, connections: \(flows), concurrency: 50, bytes: 200\(pace)}
          - at: 0s
            traffic: {from: paris, app: echo-tcp, connections: \(flows / 10), concurrency: 10, bytes: 4KiB\(pace)}
        """.write(to: scenario, atomically: true, encoding: .utf8)
        let run = try command(
            edgesim, ["run", scenario.path, "--mode", "loopback", "--dns-port", "5300", "--capture", "paris:\(file.path)"])
        guard FileManager.default.fileExists(atPath: file.path) else { throw Failure(description: "no capture recorded: \(run)") }
        return file
    }

    /// `capture` is replayed at speed 0; `paced` (recorded at a steady rate) at speed 1.
    static func run(edgesim: String, folder: URL, capture: URL, paced: URL, rounds: Int) throws -> Result {
        let ready = folder.appendingPathComponent("replay-ready")
        let up = Process()
        up.executableURL = URL(fileURLWithPath: edgesim)
        let (topologyFile, appsFile) = try files(folder)
        up.arguments = [
            "up", topologyFile.path, "--apps", appsFile.path, "--mode", "loopback", "--dns-port", "5300", "--ready-file", ready.path,
        ]
        up.standardOutput = FileHandle.nullDevice
        up.standardError = FileHandle.nullDevice
        try up.run()
        defer {
            if up.isRunning {
                kill(up.processIdentifier, SIGINT)
                up.waitUntilExit()
            }
        }
        let started = Date()
        while !FileManager.default.fileExists(atPath: ready.path) {
            guard up.isRunning, Date().timeIntervalSince(started) < 60 else { throw Failure(description: "edgesim up did not come up") }
            usleep(10_000)
        }
        let pid = "\(up.processIdentifier)"
        // Speed 1 first, on the fleet still idle: how late each send goes against the capture's schedule.
        let report = folder.appendingPathComponent("replay-timing.json")
        _ = try command(edgesim, ["replay", paced.path, "--to", pid, "--from", "paris", "--app", "echo-udp", "--report", report.path])
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [[String: Any]] ?? []
        let timing = results.flatMap { ($0["timingErrorsMs"] as? [Double]) ?? [] }.map(abs).sorted()
        func percentile(_ p: Double) -> Double { timing.isEmpty ? .nan : timing[min(timing.count - 1, Int(Double(timing.count) * p))] }
        var rates: [Double] = []
        var packets = 0
        for round in 1...rounds {
            var total = 0
            var seconds = 0.0
            for app in ["echo-udp", "echo-tcp"] {
                let output = try command(edgesim, ["replay", capture.path, "--to", pid, "--from", "paris", "--app", app, "--speed", "0"])
                // "N flows: S sent and R received in T s (P packets/s)"
                guard let line = output.split(separator: "\n").first(where: { $0.contains(" received in ") }) else {
                    throw Failure(description: "edgesim replay printed no summary: \(output)")
                }
                let words = line.split(separator: " ")
                total += (Int(words[2]) ?? 0) + (Int(words[5]) ?? 0)
                seconds += Double(words[8]) ?? 0
            }
            packets = total
            rates.append(Double(total) / seconds)
            say(
                String(
                    format: "round %d/%d: replay at speed 0: %d packets in %.3f s, %.0f packets/s", round, rounds, total, seconds,
                    rates.last!))
        }
        return Result(
            packets: packets, edgesimPacketsPerSecond: rates.sorted()[rates.count / 2],
            tcpreplayPacketsPerSecond: try tcpreplay(capture: capture, folder: folder, rounds: rounds),
            timingP50: percentile(0.5), timingP99: percentile(0.99), timingMax: timing.last ?? .nan)
    }

    /// tcpreplay --topspeed on the same capture (its raw IPv4 packets given Ethernet headers), out of a
    /// veth whose both ends sit in a namespace made for it; nil without root or tcpreplay.
    static func tcpreplay(capture: URL, folder: URL, rounds: Int) throws -> Double? {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpreplay") else {
            say("tcpreplay: needs root and Debian's tcpreplay; skipped")
            return nil
        }
        // The same packets behind an Ethernet header, as tcpreplay sends them out of a veth.
        let ethernet = folder.appendingPathComponent("replay-bench-ethernet.pcap")
        let packets = try PcapReader(file: capture.path).readAll()
        let header: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        try Data(PcapWriter.file(linkType: 1, packets: packets.map { (timestamp: $0.timestamp, data: header + $0.data) }))
            .write(to: ethernet)
        let namespace = "edgesim-bench-replay-\(getpid())"
        _ = try command("/usr/sbin/ip", ["netns", "add", namespace])
        defer { _ = try? command("/usr/sbin/ip", ["netns", "del", namespace]) }
        _ = try command("/usr/sbin/ip", ["-n", namespace, "link", "add", "rb0", "type", "veth", "peer", "name", "rb1"])
        _ = try command("/usr/sbin/ip", ["-n", namespace, "link", "set", "rb0", "up"])
        _ = try command("/usr/sbin/ip", ["-n", namespace, "link", "set", "rb1", "up"])
        var rates: [Double] = []
        for round in 1...rounds {
            let output = try command(
                "/usr/sbin/ip", ["netns", "exec", namespace, "/usr/bin/tcpreplay", "--topspeed", "-i", "rb0", ethernet.path])
            // "Rated: 123456.7 Bps, 0.98 Mbps, 2345.67 pps"
            guard let line = output.split(separator: "\n").first(where: { $0.contains("Rated:") }),
                let pps = line.split(separator: ",").last?.trimmingCharacters(in: .whitespaces).split(separator: " ").first.flatMap({
                    Double($0)
                })
            else { throw Failure(description: "tcpreplay printed no rate: \(output)") }
            rates.append(pps)
            say(String(format: "round %d/%d: tcpreplay --topspeed: %.0f packets/s", round, rounds, pps))
        }
        return rates.sorted()[rates.count / 2]
    }

    /// Runs a program to its end; its standard output (and error, appended).
    @discardableResult
    static func command(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = try output.fileHandleForReading.readAll()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 || program.hasSuffix("edgesim") else {
            throw Failure(description: "\(program) \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }
}
