import EdgeNet
import Foundation
import NIOCore
import NIOPosix

/// A relay under test, running as its own process: edgesim, HAProxy, socat, or none (direct).
struct Peer {
    var name: String
    /// Where the load goes for each workload; nil when the peer cannot do it (HAProxy: UDP).
    var throughput: (String, Int)
    var connections: (String, Int)
    var datagrams: (String, Int)?
    var processes: [ChildProcess]
    /// Command-line fragments of processes the peer forks on its own (socat's UDP listener
    /// re-listens in a new process after each peer), killed by pattern at the end.
    var forkedPatterns: [String] = []

    /// SIGTERM, then SIGKILL for a process still running 2 s later, then whatever it forked.
    func stop() {
        PeerLauncher.stop(processes)
        for pattern in forkedPatterns {
            if let pkill = PeerLauncher.find("pkill"), let process = try? PeerLauncher.run(pkill, ["-KILL", "-f", pattern]) {
                PeerLauncher.waitForExit(process)
            }
        }
    }
}

struct Targets {
    var sinkPort: Int
    var echoPort: Int
    var udpEchoPort: Int
    let origin = "127.0.0.1"
}

enum PeerLauncher {
    /// Started with edgesim's own spawn: no signal blocked or ignored in the child, whatever this
    /// thread has blocked (a Foundation `Process` started from a pool thread inherits its blocked
    /// signals, so SIGTERM did not end it, and it was never reaped).
    static func run(_ path: String, _ arguments: [String]) throws -> ChildProcess {
        try ChildProcess([path] + arguments)
    }

    /// Blocks until `process` has exited and been reaped.
    static func waitForExit(_ process: ChildProcess) {
        let done = DispatchSemaphore(value: 0)
        process.onExit { _ in done.signal() }
        done.wait()
    }

    /// Runs `check`; if it fails, the processes are stopped before the error goes on.
    static func ready(_ processes: [ChildProcess], _ check: () async throws -> Void) async throws {
        do {
            try await check()
        } catch {
            stop(processes)
            throw error
        }
    }

    static func stop(_ processes: [ChildProcess]) {
        for process in processes { process.signal(SIGTERM) }
        let deadline = Date().addingTimeInterval(2)
        while processes.contains(where: \.isRunning), Date() < deadline { usleep(20_000) }
        for process in processes { process.signal(SIGKILL) }
        for process in processes { waitForExit(process) }
    }

    static func find(_ name: String) -> String? {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"].map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Waits until a TCP listener accepts, up to 10 s.
    static func waitForListener(_ host: String, _ port: Int) async throws {
        for _ in 0..<500 {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: host, port: port).get()
            {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("nothing listens on \(host):\(port) after 10 s")
    }

    /// An edgesim node; with `events`, one writing every event as a JSON line to a file, as a
    /// node under a runner does to its control channel.
    static func edgesim(_ binary: String, _ targets: Targets, folder: URL, events: Bool = false) async throws -> Peer {
        let host = events ? "127.0.0.7" : "127.0.0.2"
        let apps = """
            [{"id": "throughput", "protocol": "tcp/20001", "dns": {"type": "CNAME", "name": "t.bench.example"}, "origin_direct": ["tcp://\(targets.origin):\(targets.sinkPort)"]},
             {"id": "connections", "protocol": "tcp/20002", "dns": {"type": "CNAME", "name": "c.bench.example"}, "origin_direct": ["tcp://\(targets.origin):\(targets.echoPort)"]},
             {"id": "datagrams", "protocol": "udp/20003", "dns": {"type": "CNAME", "name": "u.bench.example"}, "origin_direct": ["udp://\(targets.origin):\(targets.udpEchoPort)"]}]
            """
        let file = folder.appendingPathComponent("apps.json")
        try apps.write(to: file, atomically: true, encoding: .utf8)
        let recording = events ? ["--events", folder.appendingPathComponent("events.jsonl").path] : []
        let process = try run(binary, ["node", "--apps", file.path, "--listen", host, "--name", "bench"] + recording)
        try await ready([process]) { try await waitForListener(host, 20002) }
        return Peer(
            name: events ? "edgesim+ev" : "edgesim", throughput: (host, 20001), connections: (host, 20002), datagrams: (host, 20003),
            processes: [process])
    }

    /// HAProxy as it comes, and tuned for throughput: buffers of 128 KiB (`tune.bufsize`), or
    /// splicing between the sockets in the kernel (`option splice-auto`).
    enum HAProxyTuning: String, CaseIterable {
        case standard = "haproxy"
        case largeBuffers = "haproxy-buf"
        case splice = "haproxy-splice"

        var host: String {
            switch self {
            case .standard: return "127.0.0.3"
            case .largeBuffers: return "127.0.0.21"
            case .splice: return "127.0.0.22"
            }
        }
    }

    static func haproxy(_ targets: Targets, folder: URL, tuning: HAProxyTuning = .standard) async throws -> Peer? {
        guard let binary = find("haproxy") else { return nil }
        let host = tuning.host
        let config = """
            global
              maxconn 8000
            \(tuning == .largeBuffers ? "  tune.bufsize 131072" : "")
            \(tuning == .splice ? "  maxpipes 512" : "")
            defaults
              mode tcp
            \(tuning == .splice ? "  option splice-auto" : "")
              timeout connect 5s
              timeout client 60s
              timeout server 60s
            listen throughput
              bind \(host):20001
              server sink \(targets.origin):\(targets.sinkPort)
            listen connections
              bind \(host):20002
              server echo \(targets.origin):\(targets.echoPort)

            """
        let file = folder.appendingPathComponent("\(tuning.rawValue).cfg")
        try config.write(to: file, atomically: true, encoding: .utf8)
        let process = try run(binary, ["-db", "-f", file.path])
        try await ready([process]) { try await waitForListener(host, 20002) }
        return Peer(name: tuning.rawValue, throughput: (host, 20001), connections: (host, 20002), datagrams: nil, processes: [process])
    }

    /// nginx's `stream` proxy, a worker per core, 256 KiB buffers, half-closes passed on (the
    /// sink answers after the client's), in the foreground with its files in `folder`.
    static func nginx(_ targets: Targets, folder: URL) async throws -> Peer? {
        let module = "/usr/lib/nginx/modules/ngx_stream_module.so"
        guard let binary = find("nginx"), FileManager.default.fileExists(atPath: module) else { return nil }
        let host = "127.0.0.23"
        let prefix = folder.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
        let config = """
            load_module \(module);
            daemon off;
            worker_processes auto;
            pid \(prefix.path)/nginx.pid;
            error_log \(prefix.path)/error.log warn;
            events { worker_connections 16384; multi_accept on; }
            stream {
              server { listen \(host):20001; proxy_pass \(targets.origin):\(targets.sinkPort); proxy_buffer_size 256k; proxy_half_close on; }
              server { listen \(host):20002 backlog=1024; proxy_pass \(targets.origin):\(targets.echoPort); }
            }

            """
        let file = prefix.appendingPathComponent("nginx.conf")
        try config.write(to: file, atomically: true, encoding: .utf8)
        let process = try run(binary, ["-e", prefix.appendingPathComponent("error.log").path, "-p", prefix.path, "-c", file.path])
        try await ready([process]) { try await waitForListener(host, 20002) }
        return Peer(name: "nginx", throughput: (host, 20001), connections: (host, 20002), datagrams: nil, processes: [process])
    }

    static func socat(_ targets: Targets) async throws -> Peer? {
        guard let binary = find("socat") else { return nil }
        let host = "127.0.0.4"
        let processes = [
            try run(binary, ["TCP-LISTEN:20001,bind=\(host),fork,reuseaddr", "TCP:\(targets.origin):\(targets.sinkPort)"]),
            try run(binary, ["TCP-LISTEN:20002,bind=\(host),fork,reuseaddr,backlog=1024", "TCP:\(targets.origin):\(targets.echoPort)"]),
            try run(binary, ["UDP-LISTEN:20003,bind=\(host),fork,reuseaddr", "UDP:\(targets.origin):\(targets.udpEchoPort)"]),
        ]
        try await ready(processes) {
            try await waitForListener(host, 20001)
            try await waitForListener(host, 20002)
        }
        return Peer(
            name: "socat", throughput: (host, 20001), connections: (host, 20002), datagrams: (host, 20003), processes: processes,
            forkedPatterns: ["LISTEN:2000[123],bind=\(host),fork"])
    }

    static func direct(_ targets: Targets) -> Peer {
        Peer(
            name: "direct", throughput: (targets.origin, targets.sinkPort), connections: (targets.origin, targets.echoPort),
            datagrams: (targets.origin, targets.udpEchoPort), processes: [])
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
