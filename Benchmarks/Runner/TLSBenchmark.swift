import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Edge TLS against HAProxy terminating TLS with the same certificate (ECDSA P-256 from
/// edgesim's local CA), both in front of the same plain origins: new TLS connections per second
/// (a full handshake each, no resumption, one byte echoed) and single-stream throughput through
/// TLS to the sink.
enum TLSBenchmark {
    struct Result {
        var handshakes: [String: Double] = [:]
        var throughput: [String: Double] = [:]
    }

    static let name = "tls.bench.example"
    /// The TLS client encrypts on a thread of its own: on the shared group it sometimes landed on
    /// the sink's thread, which halved the stream for whichever peer was being measured.
    static let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func run(
        edgesim: String, folder: URL, targets: Targets, rounds: Int, connections: Int, concurrency: Int, bytes: Int, deadline: Duration,
        say: (String) -> Void
    ) async throws -> (Result, [String]) {
        let ca = try LocalCA()
        try ca.write(to: folder)
        let files = try ca.issue(names: [name]).write(to: folder, name: "tls-bench")
        let combined = folder.appendingPathComponent("tls-bench-combined.pem")
        // One PEM after the other, each ending its line.
        let pems = try [files.certificate, files.key].map { try String(contentsOf: $0, encoding: .utf8) }
        try pems.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined().write(to: combined, atomically: true, encoding: .utf8)

        var peers: [(name: String, host: String, processes: [ChildProcess])] = []
        defer { for peer in peers { PeerLauncher.stop(peer.processes) } }
        let apps = """
            [{"id": "tls-throughput", "protocol": "tcp/20011", "dns": {"type": "CNAME", "name": "\(name)"}, "origin_direct": ["tcp://\(targets.origin):\(targets.sinkPort)"], "tls": "flexible", "tls_certificate": "\(files.certificate.path)", "tls_key": "\(files.key.path)"},
             {"id": "tls-connections", "protocol": "tcp/20012", "dns": {"type": "CNAME", "name": "c.\(name)"}, "origin_direct": ["tcp://\(targets.origin):\(targets.echoPort)"], "tls": "flexible", "tls_certificate": "\(files.certificate.path)", "tls_key": "\(files.key.path)"}]
            """
        let appsFile = folder.appendingPathComponent("tls-apps.json")
        try apps.write(to: appsFile, atomically: true, encoding: .utf8)
        let node = try PeerLauncher.run(edgesim, ["node", "--apps", appsFile.path, "--listen", "127.0.0.8", "--name", "tls-bench"])
        try await PeerLauncher.ready([node]) { try await PeerLauncher.waitForListener("127.0.0.8", 20012) }
        peers.append(("edgesim", "127.0.0.8", [node]))

        if let binary = PeerLauncher.find("haproxy") {
            for (label, host, tuning) in [("haproxy", "127.0.0.9", ""), ("haproxy-tuned", "127.0.0.10", "  tune.bufsize 131072\n")] {
                let config = """
                    global
                      maxconn 8000
                    \(tuning)defaults
                      mode tcp
                      timeout connect 5s
                      timeout client 60s
                      timeout server 60s
                    listen throughput
                      bind \(host):20011 ssl crt \(combined.path)
                      server sink \(targets.origin):\(targets.sinkPort)
                    listen connections
                      bind \(host):20012 ssl crt \(combined.path)
                      server echo \(targets.origin):\(targets.echoPort)

                    """
                let file = folder.appendingPathComponent("\(label).cfg")
                try config.write(to: file, atomically: true, encoding: .utf8)
                let process = try PeerLauncher.run(binary, ["-db", "-f", file.path])
                do {
                    try await PeerLauncher.ready([process]) { try await PeerLauncher.waitForListener(host, 20012) }
                } catch {
                    // Say why: HAProxy's own check of the configuration.
                    let check = Process()
                    check.executableURL = URL(fileURLWithPath: binary)
                    check.arguments = ["-c", "-f", file.path]
                    let pipe = Pipe()
                    check.standardOutput = pipe
                    check.standardError = pipe
                    try check.run()
                    let said = String(decoding: try pipe.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
                    check.waitUntilExit()
                    throw BenchError("\(label) did not start: \(said)")
                }
                peers.append((label, host, [process]))
            }
        } else {
            say("haproxy not installed: TLS compared with nothing")
        }

        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(folder.appendingPathComponent(LocalCA.certificateFile).path)
        let context = try NIOSSLContext(configuration: configuration)
        var handshakes: [String: [Double]] = [:]
        var throughput: [String: [Double]] = [:]
        for round in 1...rounds {
            for peer in peers {
                let (rate, failed) = try await Self.handshakes(
                    peer.host, 20012, context: context, total: connections, concurrency: concurrency, deadline: deadline)
                let stream = try await Self.throughput(peer.host, 20011, context: context, bytes: bytes, deadline: deadline)
                handshakes[peer.name, default: []].append(rate)
                throughput[peer.name, default: []].append(stream)
                say(
                    String(
                        format: "round %d/%d: TLS %@: %.0f handshakes/s (%d failed), %.2f Gbit/s", round, rounds, peer.name, rate, failed,
                        stream * 8 / 1e9))
            }
        }
        var result = Result()
        for peer in peers {
            result.handshakes[peer.name] = handshakes[peer.name]!.sorted()[rounds / 2]
            result.throughput[peer.name] = throughput[peer.name]!.sorted()[rounds / 2]
        }
        return (result, peers.map(\.name))
    }

    /// `total` TLS connections, `concurrency` at a time: a full handshake, one byte echoed, close.
    static func handshakes(
        _ host: String, _ port: Int, context: NIOSSLContext, total: Int, concurrency: Int, deadline: Duration
    ) async throws -> (rate: Double, failed: Int) {
        let result = try await Workloads.connections(total: total, concurrency: concurrency, deadline: deadline) {
            try await connect(host, port, context: context)
        }
        return (result.rate, result.failed)
    }

    /// One TLS connection: `bytes` to the sink, whose count comes back after the close; bytes per second.
    static func throughput(_ host: String, _ port: Int, context: NIOSSLContext, bytes: Int, deadline: Duration) async throws -> Double {
        try await Workloads.throughput(over: connect(host, port, context: context, halfClosure: true), bytes: bytes, deadline: deadline)
    }

    static func connect(_ host: String, _ port: Int, context: NIOSSLContext, halfClosure: Bool = false) async throws
        -> NIOAsyncChannel<ByteBuffer, ByteBuffer>
    {
        try await ClientBootstrap(group: clientGroup)
            .channelOption(.allowRemoteHalfClosure, value: halfClosure)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: name))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: halfClosure))
                }
            }
    }
}
