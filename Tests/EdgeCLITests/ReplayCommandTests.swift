import Foundation
import Testing

/// Captures from the command line: `pcap inspect`, and bad captures refused by `validate` and
/// `run` with the file and record, before anything starts.
extension FleetRuns {
    @Suite struct ReplayCommandTests {
        static func capture(_ name: String) -> String {
            EdgesimProcess.repository.appendingPathComponent("scenarios/captures/\(name)").path
        }

        @Test func inspectListsFlowsAndTheApplicationsTheyWouldReach() throws {
            let scenario = EdgesimProcess.repository.appendingPathComponent("scenarios/replay-lab.yaml").path
            let run = try EdgesimProcess.run(["pcap", "inspect", Self.capture("echo-ipv6.pcap"), "--scenario", scenario])
            #expect(run.status == 0, "\(run.errors)")
            #expect(run.output.contains("pcap, Linux cooked v2, 37 records"), "\(run.output)")
            let lines = run.output.split(separator: "\n").map(String.init)
            let tcp = try #require(lines.first { $0.contains("tcp") && $0.contains("[2001:db8:a::1]:7") }, "\(run.output)")
            #expect(tcp.contains("3020/3020") && tcp.contains("closed") && tcp.hasSuffix("echo-tcp"), "\(tcp)")
            let udp = try #require(lines.first { $0.contains("udp") && $0.contains("[2001:db8:a::2]:7") }, "\(run.output)")
            #expect(udp.contains("5/5") && udp.contains("1055/1055") && udp.hasSuffix("echo-udp"), "\(udp)")

            let json = try EdgesimProcess.run(["pcap", "inspect", Self.capture("dns-dig.pcap"), "--json", "--filter", "tcp"])
            #expect(json.status == 0, "\(json.errors)")
            let listing = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any] ?? [:]
            let flows = listing["flows"] as? [[String: Any]] ?? []
            #expect(flows.count == 1)
            #expect(flows.first?["transport"] as? String == "tcp")
            #expect(flows.first?["server"] as? String == "198.18.255.53:53")
        }

        @Test func badCapturesAreRefusedByEveryCommandWithTheirRecord() throws {
            // The echo capture cut in the middle of its 12th record.
            let whole = try Data(contentsOf: URL(fileURLWithPath: Self.capture("echo-tcp.pcap")))
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-replay-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var offset = 24
            for _ in 0..<11 {
                offset += 16 + Int(whole[offset + 8]) + Int(whole[offset + 9]) << 8
            }
            let cut = folder.appendingPathComponent("cut.pcap")
            try whole.prefix(offset + 20).write(to: cut)
            let (_, scenario) = try EdgesimProcess.scenario(
                """
                name: cut
                topology: REPO/topologies/replay-lab.yaml
                timeout: 20s
                app_files: [REPO/scenarios/apps/replay-apps.yaml]
                timeline:
                  - at: 0s
                    replay: {pcap: \(cut.path), from: paris, app: echo-tcp}
                expect:
                  - replay_success: {at_least: 100%}
                """)
            defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: scenario).deletingLastPathComponent().path) }
            let expected = "\(cut.path): record 12: corrupt capture: truncated"

            let validate = try EdgesimProcess.run(["validate", scenario])
            #expect(validate.status == 1)
            #expect(validate.output.contains(expected), "\(validate.output)")

            let run = try EdgesimProcess.run(["run", scenario, "--mode", "loopback"])
            #expect(run.status == 2)
            #expect(run.errors.contains(expected), "\(run.errors)")
            #expect(!run.errors.contains("starting"), "nothing started: \(run.errors)")

            let inspect = try EdgesimProcess.run(["pcap", "inspect", cut.path])
            #expect(inspect.status == 1)
            #expect(inspect.errors.contains(expected), "\(inspect.errors)")
        }

        @Test func ipv6IsRefusedInLoopbackModeBeforeAnythingStarts() throws {
            let replay = EdgesimProcess.repository.appendingPathComponent("scenarios/replay-ipv6.yaml").path
            let run = try EdgesimProcess.run(["run", replay, "--mode", "loopback"])
            #expect(run.status == 2)
            #expect(run.errors.contains("are IPv6, and loopback mode is IPv4 only"), "\(run.errors)")
            let clients = EdgesimProcess.repository.appendingPathComponent("scenarios/ipv6-clients.yaml").path
            let traffic = try EdgesimProcess.run(["run", clients, "--mode", "loopback"])
            #expect(traffic.status == 2)
            #expect(traffic.errors.contains("IPv6") && traffic.errors.contains("netns mode"), "\(traffic.errors)")
            #expect(!traffic.errors.contains("starting"), "\(traffic.errors)")
        }
    }
}
