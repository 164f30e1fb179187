import EdgeDNS
import EdgeModel
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

/// HAProxy with `accept-proxy` is a strict, independent PROXY protocol receiver: it refuses any
/// connection whose header is not exactly right, and logs the client address the header gave.
@Suite(.serialized) struct HAProxyInteropTests {
    static let haproxy = ExternalProcess.find("haproxy")

    func withHAProxy(_ body: (Endpoint, ExternalProcess) async throws -> Void) async throws {
        guard let haproxy = Self.haproxy else {
            try #require(ExternalProcess.mayBeMissing("haproxy"), "haproxy is not installed; scripts/setup installs it")
            print("skipped: haproxy is not installed (scripts/setup installs it)")
            return
        }
        let echo = TCPOrigin()
        let echoEndpoint = try await echo.start(address: Loopback.address())[0]
        let frontend = Endpoint(Loopback.address(), 7443)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = """
            global
              log stdout format raw local0 info
            defaults
              mode tcp
              log global
              timeout connect 5s
              timeout client 30s
              timeout server 30s
            frontend from_edge
              bind \(frontend) accept-proxy
              log-format "seen client=%ci:%cp destination=%fi:%fp bytes=%B"
              default_backend echo
            backend echo
              server echo \(echoEndpoint)
            """
        let configPath = folder.appendingPathComponent("haproxy.cfg").path
        try (config + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = try ExternalProcess(haproxy, ["-db", "-f", configPath])
        defer { process.stop() }
        try await waitUntilListening(frontend, process: process)
        try await body(frontend, process)
        await echo.stop()
    }

    /// Connects until HAProxy accepts (it logs nothing for a connection that sends no header
    /// and is closed before its timeout).
    func waitUntilListening(_ endpoint: Endpoint, process: ExternalProcess) async throws {
        for _ in 0..<250 {
            try #require(process.isRunning, "haproxy exited: \(process.output.joined(separator: " / "))")
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: endpoint.socketAddress)
                .get()
            {
                try await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("haproxy did not start listening on \(endpoint)")
    }

    @Test(arguments: [ProxyProtocolMode.v1, .v2])
    func haproxyAcceptsOurHeaderFromIPv4(version: ProxyProtocolMode) async throws {
        try await withHAProxy { frontend, process in
            let edge = Loopback.address()
            let client = Loopback.address()
            let node = EdgeNode(
                applications: [application("mail", "tcp/25", origins: ["tcp://\(frontend)"], proxy: version)], listen: [edge])
            _ = try await node.start()
            let result = try await TCPTestClient.exchange(with: Endpoint(edge, 25), from: client, sending: Array("EHLO test\r\n".utf8))
            await node.stop()
            #expect(String(decoding: result.received, as: UTF8.self) == "EHLO test\r\n", "\(process.output) \(node.events.events)")
            let line = await process.waitForLine(containing: "seen client=")
            #expect(line?.contains("seen client=\(result.local) destination=\(edge):25") == true, "\(process.output)")
        }
    }

    @Test(arguments: [ProxyProtocolMode.v1, .v2])
    func haproxyAcceptsOurHeaderFromIPv6(version: ProxyProtocolMode) async throws {
        try await withHAProxy { frontend, process in
            let port = try Loopback.freeIPv6Port()
            let node = EdgeNode(
                applications: [application("mail6", "tcp/\(port)", origins: ["tcp://\(frontend)"], proxy: version)],
                listen: [IPAddress("::1")!])
            _ = try await node.start()
            let result = try await TCPTestClient.exchange(with: Endpoint(IPAddress("::1")!, port), sending: Array("QUIT\r\n".utf8))
            await node.stop()
            #expect(String(decoding: result.received, as: UTF8.self) == "QUIT\r\n", "\(process.output) \(node.events.events)")
            let line = await process.waitForLine(containing: "seen client=")
            #expect(line?.contains("seen client=::1:\(result.local.port) destination=::1:\(port)") == true, "\(process.output)")
        }
    }
}
