import EdgeNet
import EdgeSim
import Foundation
import Testing

/// A scenario whose edge nodes run in an `edgesim node-host --listen` process, as in a
/// node-host pod: the run is green, in netns mode every node's traffic crossed the tunnels, a
/// runner with the wrong token is refused with the reason, and when runs end the host is left
/// with nothing of theirs (no nodes, no namespaces) until it is told to stop.
extension FleetRuns {
    @Suite struct NodeHostListenTests {
        @Test(arguments: EdgesimProcess.modes)
        func aScenarioRunsGreenWithItsNodesInAListeningNodeHost(mode: String) async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-listen-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let token = folder.appendingPathComponent("token").path
            try "\(UUID().uuidString)\n".write(toFile: token, atomically: true, encoding: .utf8)
            let wrong = folder.appendingPathComponent("wrong").path
            try "guess\n".write(toFile: wrong, atomically: true, encoding: .utf8)
            let scenario = EdgesimProcess.repository.appendingPathComponent("scenarios/lab-echo.yaml").path

            let host = try ChildProcess(
                [
                    EdgesimProcess.executable, "node-host", "--listen", "127.0.0.1:0", "--scenario", scenario, "--mode", mode,
                    "--token-file", token,
                ],
                output: .pipe, errors: .pipe)
            defer { host.signal(SIGKILL) }
            let said = Locked<[String]>([])
            Task { for await line in LineStream.lines(of: host.errors!) { said.mutate { $0.append(line) } } }
            var lines = LineStream.lines(of: host.output!).makeAsyncIterator()
            let first = try #require(await lines.next())
            let port = try #require(first.split(separator: ":").last.flatMap { Int($0) }, "\(first)")

            let run = try EdgesimProcess.run(
                ["run", scenario, "--mode", mode, "--node-hosts", "127.0.0.1:\(port)", "--node-host-token", token])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario lab-echo (\(mode) mode): PASSED"), "\(run.output)")
            #expect(
                EdgesimProcess.waitUntil {
                    said.value.contains { $0.hasSuffix("went: 3 nodes stopped\(mode == "netns" ? ", their namespaces deleted" : "")") }
                }, "\(said.value)")
            if mode == "netns" {
                // Every node's packets crossed: nothing answers otherwise, as its addresses are only in the host's namespaces.
                let counts = try #require(
                    run.output.split(separator: "\n").first { $0.contains("tunnels to their 3 nodes") }, "\(run.output)")
                #expect(!counts.contains(" 0 packets sent") && !counts.contains(" 0 received"), "\(counts)")
                #expect(!NetworkNamespace.list().contains { $0.hasPrefix("edgesim-\(host.pid)-") })
            }

            let refused = try EdgesimProcess.run(
                ["run", scenario, "--mode", mode, "--node-hosts", "127.0.0.1:\(port)", "--node-host-token", wrong])
            #expect(refused.status != 0)
            #expect((refused.output + refused.errors).contains("refused the runner: wrong token"), "\(refused.output)\n\(refused.errors)")

            host.signal(SIGTERM)
            #expect(await host.exited() == 0)
        }
    }
}
