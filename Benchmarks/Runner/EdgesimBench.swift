import ArgumentParser
import EdgeModel
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix

/// Drives the same workloads through edgesim, HAProxy (mode tcp), socat and no relay at all, in
/// one run on one machine, and prints each figure and edgesim's ratio to each peer.
@main
struct EdgesimBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgesim-bench", abstract: "edgesim's relay against HAProxy and socat on loopback, as ratios.")

    @Option(help: "The edgesim executable (build it with: swift build -c release).")
    var edgesim = ".build/release/edgesim"

    @Option(help: "Bytes sent on the single-stream throughput test.")
    var bytes = 1 << 30

    @Option(help: "Connections opened on the connection-rate test.")
    var connections = 5000

    @Option(help: "Connections open at once on the connection-rate test.")
    var concurrency = 32

    @Option(help: "Datagram replies counted on the UDP test.")
    var datagrams = 200_000

    @Option(help: "Longest a single workload may run, in seconds.")
    var deadline = 30

    @Option(help: "Rounds; the median of each figure is reported.")
    var rounds = 3

    @Option(help: "UDP flows in the capture the replay workload records (and a tenth as many TCP connections).")
    var replayFlows = 2000

    @Option(help: "TLS connections opened on the TLS handshake test.")
    var tlsConnections = 2000

    @Option(help: "Seconds wrk runs against each HTTP peer.")
    var httpSeconds = 10

    @Option(help: "What to measure: relay, tls, http, dns, fleet, replay (comma-separated).")
    var workloads = "relay,dns"

    @Option(help: "Fleet sizes (edge nodes) for the fleet workload.")
    var fleetSizes = "10,100,1000"

    @Option(help: "Modes for the fleet workload: netns (root), loopback.")
    var fleetModes = "netns,loopback"

    @Option(help: "Names in the zone for the DNS benchmark.")
    var names = 1000

    @Option(help: "Seconds dnsperf runs against each server.")
    var dnsSeconds = 10

    func run() async throws {
        guard FileManager.default.isExecutableFile(atPath: edgesim) else {
            throw ValidationError("no edgesim executable at \(edgesim); build it with swift build -c release")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let parts = workloads.split(separator: ",").map(String.init)
        if parts.contains("fleet") {
            var rows: [FleetBenchmark.Result] = []
            for mode in fleetModes.split(separator: ",").map(String.init) {
                if mode == "netns", geteuid() != 0 {
                    say("fleet: netns mode needs root; skipped")
                    continue
                }
                for size in fleetSizes.split(separator: ",").compactMap({ Int($0) }) {
                    if mode == "loopback", size > 107 {
                        say("fleet: loopback mode holds at most 107 nodes; \(size) skipped")
                        continue
                    }
                    var runs: [FleetBenchmark.Result] = []
                    for round in 1...rounds {
                        let result = try FleetBenchmark.run(edgesim: edgesim, folder: folder, nodes: size, mode: mode, deadline: 300)
                        say(
                            String(
                                format:
                                    "round %d/%d: fleet %d nodes, %@: up in %.2f s, %.2f MiB per node (%d node processes), runner %.1f MiB, fleet %.1f MiB, down in %.2f s",
                                round, rounds, size, mode, result.seconds, result.megabytesPerNode, result.nodeProcesses,
                                result.runnerMegabytes, result.fleetMegabytes, result.teardownSeconds))
                        runs.append(result)
                    }
                    rows.append(runs.sorted { $0.seconds < $1.seconds }[runs.count / 2])
                }
            }
            say("\nfleet start-up (median of \(rounds) rounds)")
            say("nodes  mode      up (s)  nodes/s  processes  MiB/node  runner MiB  fleet MiB  down (s)")
            for row in rows {
                say(
                    String(
                        format: "%5d  %@  %6.2f  %7.1f  %9d  %8.2f  %10.1f  %9.1f  %8.2f", row.nodes,
                        row.mode.padding(toLength: 8, withPad: " ", startingAt: 0), row.seconds,
                        Double(row.nodes) / row.seconds, row.nodeProcesses, row.megabytesPerNode, row.runnerMegabytes,
                        row.fleetMegabytes, row.teardownSeconds))
            }
        }
        if parts.contains("replay") {
            let capture = try ReplayBenchmark.record(edgesim: edgesim, folder: folder, flows: replayFlows)
            let paced = try ReplayBenchmark.record(edgesim: edgesim, folder: folder, flows: 500, rate: 100)
            let result = try ReplayBenchmark.run(edgesim: edgesim, folder: folder, capture: capture, paced: paced, rounds: rounds)
            say("\nreplay of a recorded capture (\(result.packets) packets replayed each round; median of \(rounds) rounds)")
            say(
                String(
                    format: "edgesim replay --speed 0   %.0f packets/s (real flows through the fleet, each reply awaited)",
                    result.edgesimPacketsPerSecond))
            if let theirs = result.tcpreplayPacketsPerSecond {
                say(String(format: "tcpreplay --topspeed       %.0f packets/s (raw packets out of a veth, no sessions)", theirs))
                say(String(format: "edgesim/tcpreplay          %.2fx", result.edgesimPacketsPerSecond / theirs))
            }
            say(
                String(
                    format: "timing at speed 1 (500 UDP flows recorded at 100/s): p50 %.3f ms, p99 %.3f ms, max %.3f ms late\n",
                    result.timingP50, result.timingP99, result.timingMax))
        }
        if parts.contains("dns") {
            var rates: [DNSBenchmark.Result] = []
            for round in 1...rounds {
                guard let result = try await DNSBenchmark.run(edgesim: edgesim, folder: folder, names: names, seconds: dnsSeconds) else {
                    break
                }
                say(String(format: "round %d/%d: dns: edgesim %.0f q/s, nsd %.0f q/s", round, rounds, result.edgesim, result.nsd))
                rates.append(result)
            }
            if let mine = median(rates.map(\.edgesim)), let theirs = median(rates.map(\.nsd)) {
                say(
                    String(
                        format: "\nDNS, %d names, dnsperf: edgesim %.0f q/s, NSD %.0f q/s, edgesim/NSD %.2fx\n", names, mine, theirs,
                        mine / theirs))
            }
        }
        guard parts.contains("relay") || parts.contains("tls") || parts.contains("http") else { return }
        let (sink, sinkPort) = try await BenchOrigins.sink(at: "127.0.0.1")
        let echo = TCPOrigin()
        let echoPort = Int(try await echo.start(address: IPAddress("127.0.0.1")!)[0].port)
        let udpEcho = UDPEchoOrigin()
        let udpPort = Int(try await udpEcho.start(at: Endpoint(IPAddress("127.0.0.1")!, 0)).port)
        let targets = Targets(sinkPort: sinkPort, echoPort: echoPort, udpEchoPort: udpPort)
        if parts.contains("tls") {
            let (result, names) = try await TLSBenchmark.run(
                edgesim: edgesim, folder: folder, targets: targets, rounds: rounds, connections: tlsConnections, concurrency: concurrency,
                bytes: bytes, deadline: .seconds(deadline), say: say)
            say("\nedge TLS (flexible; ECDSA P-256 certificate, TLS 1.3; median of \(rounds) rounds)")
            say(
                "workload".padding(toLength: 34, withPad: " ", startingAt: 0)
                    + names.map { $0.padding(toLength: 15, withPad: " ", startingAt: 0) }.joined() + "edgesim/best haproxy")
            for (title, values, scale, format) in [
                ("new TLS connections/s", result.handshakes, 1.0, "%.0f"),
                ("single-stream through TLS, Gbit/s", result.throughput, 8 / 1e9, "%.2f"),
            ] {
                var line = title.padding(toLength: 34, withPad: " ", startingAt: 0)
                for name in names {
                    line += String(format: format, (values[name] ?? 0) * scale).padding(toLength: 15, withPad: " ", startingAt: 0)
                }
                let best = names.filter { $0.hasPrefix("haproxy") }.compactMap { values[$0] }.max()
                if let best, let mine = values["edgesim"] { line += String(format: "%.2fx", mine / best) }
                say(line)
            }
        }
        if parts.contains("http") {
            let web = TCPOrigin(responder: .http)
            let webPort = Int(try await web.start(address: IPAddress("127.0.0.1")!)[0].port)
            if let (rates, names) = try await HTTPBenchmark.run(
                edgesim: edgesim, folder: folder, originPort: webPort, rounds: rounds, seconds: httpSeconds, connections: concurrency,
                say: say)
            {
                say("\nHTTP through an http application, wrk -t2 -c\(concurrency), keep-alive (median of \(rounds) rounds)")
                say(names.map { "\($0) \(String(format: "%.0f", rates[$0] ?? 0)) requests/s" }.joined(separator: ", "))
                let best = { (prefix: String) in names.filter { $0.hasPrefix(prefix) }.compactMap { rates[$0] }.max() }
                if let mine = best("edgesim"), let theirs = best("haproxy") {
                    say(String(format: "edgesim/haproxy %.2fx (the best of each)\n", mine / theirs))
                }
            }
            await web.stop()
        }
        guard parts.contains("relay") else {
            try? await sink.close()
            await echo.stop()
            await udpEcho.stop()
            return
        }

        var peers: [Peer] = [PeerLauncher.direct(targets)]
        defer { for peer in peers { peer.stop() } }
        peers.append(try await PeerLauncher.edgesim(edgesim, targets, folder: folder))
        // The same node writing every event: recording must not cost the connection rate.
        peers.append(try await PeerLauncher.edgesim(edgesim, targets, folder: folder, events: true))
        // HAProxy as it comes and tuned, and nginx: edgesim is measured against the best of them.
        for tuning in PeerLauncher.HAProxyTuning.allCases {
            if let haproxy = try await PeerLauncher.haproxy(targets, folder: folder, tuning: tuning) {
                peers.append(haproxy)
            } else {
                say("haproxy not installed: \(tuning.rawValue) skipped")
            }
        }
        if let nginx = try await PeerLauncher.nginx(targets, folder: folder) {
            peers.append(nginx)
        } else {
            say("nginx (with its stream module) not installed: skipped")
        }
        if let socat = try await PeerLauncher.socat(targets) { peers.append(socat) } else { say("socat not installed: skipped") }

        let limit = Duration.seconds(deadline)
        var results: [String: [String: Double]] = [:]
        for round in 1...rounds {
            for peer in peers {
                FileHandle.standardOutput.write(Data("round \(round)/\(rounds): \(peer.name)... ".utf8))
                let throughput = try await Workloads.throughput(peer.throughput.0, peer.throughput.1, bytes: bytes, deadline: limit)
                let before = HTTPBenchmark.cpuSeconds(peer.processes)
                let (rate, done, failed) = try await Workloads.connections(
                    peer.connections.0, peer.connections.1, total: connections, concurrency: concurrency, deadline: limit)
                results[peer.name, default: [:]]["throughput-\(round)"] = throughput
                results[peer.name, default: [:]]["connections-\(round)"] = rate
                var line = String(format: "%.2f Gbit/s, %.0f conn/s (%d failed)", throughput * 8 / 1e9, rate, failed)
                // The relay's own CPU for each connection (none to measure for direct).
                if !peer.processes.isEmpty, done > 0 {
                    let perConnection = (HTTPBenchmark.cpuSeconds(peer.processes) - before) / Double(done) * 1e6
                    results[peer.name, default: [:]]["cpu-\(round)"] = perConnection
                    line += String(format: " using %.0f µs of CPU each", perConnection)
                }
                if let target = peer.datagrams {
                    let (udp, lost) = try await Workloads.datagrams(
                        target.0, target.1, total: datagrams, sockets: 4, window: 32, deadline: limit)
                    results[peer.name, default: [:]]["datagrams-\(round)"] = udp
                    line += String(format: ", %.0f datagrams/s (%d lost)", udp, lost)
                }
                say(line)
            }
        }
        report(results, peers: peers.map(\.name))
        // Relays first, so nothing is still sending when the origins close.
        for peer in peers { peer.stop() }
        peers.removeAll()
        try? await sink.close()
        await echo.stop()
        await udpEcho.stop()
    }

    func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    func report(_ results: [String: [String: Double]], peers: [String]) {
        let workloads = [
            ("throughput", "single-stream TCP, Gbit/s", 8 / 1e9), ("connections", "new TCP connections/s", 1.0),
            ("datagrams", "UDP datagrams/s (64 B)", 1.0), ("cpu", "CPU per connection, µs", 1.0),
        ]
        say("\nmedian of \(rounds) rounds")
        say(
            "workload".padding(toLength: 28, withPad: " ", startingAt: 0)
                + peers.map { $0.padding(toLength: 15, withPad: " ", startingAt: 0) }.joined()
                + "edgesim/best peer       edgesim/socat  events on/off")
        for (key, title, scale) in workloads {
            let values = peers.map { peer in median((1...rounds).compactMap { results[peer]?["\(key)-\($0)"] }) }
            var line = title.padding(toLength: 28, withPad: " ", startingAt: 0)
            for value in values {
                line += (value.map { String(format: key == "throughput" ? "%.2f" : "%.0f", $0 * scale) } ?? "-").padding(
                    toLength: 15, withPad: " ", startingAt: 0)
            }
            func ratio(_ other: String, to base: String = "edgesim") -> String {
                guard let index = peers.firstIndex(of: base), let mine = values[index], let otherIndex = peers.firstIndex(of: other),
                    let theirs = values[otherIndex]
                else { return "-" }
                return String(format: "%.2fx", mine / theirs)
            }
            // The best of the relays edgesim is compared with: HAProxy as it comes or tuned, nginx.
            // (For CPU, less is better: the best rival is the one using least.)
            let rivals = peers.indices.filter { peers[$0].hasPrefix("haproxy") || peers[$0] == "nginx" }
            let best = rivals.filter { values[$0] != nil }.max { key == "cpu" ? values[$0]! > values[$1]! : values[$0]! < values[$1]! }
            line +=
                (best.map { "\(ratio(peers[$0])) (\(peers[$0]))" } ?? "-").padding(toLength: 24, withPad: " ", startingAt: 0)
                + ratio("socat").padding(toLength: 15, withPad: " ", startingAt: 0) + ratio("edgesim", to: "edgesim+ev")
            say(line)
        }
    }
}

/// Writes a line at once, so progress shows while the run goes on.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
