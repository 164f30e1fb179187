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

extension FleetRuns {
    /// `edgesim replay --to` against a fleet `edgesim up` keeps running, in both modes.
    @Suite struct LiveReplayTests {
        @Test(arguments: EdgesimProcess.modes)
        func capturesReplayAgainstARunningFleet(mode: String) throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-live-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let ready = folder.appendingPathComponent("ready").path
            let repository = EdgesimProcess.repository
            let up = Process()
            up.executableURL = URL(fileURLWithPath: EdgesimProcess.executable)
            up.arguments = [
                "up", repository.appendingPathComponent("topologies/replay-lab.yaml").path, "--apps",
                repository.appendingPathComponent("scenarios/apps/replay-apps.yaml").path, "--mode", mode, "--dns-port", "5300",
                "--ready-file", ready,
            ]
            up.standardOutput = FileHandle.nullDevice
            up.standardError = FileHandle.nullDevice
            try up.run()
            let watchdog = DispatchWorkItem { kill(up.processIdentifier, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: watchdog)
            defer {
                watchdog.cancel()
                if up.isRunning {
                    kill(up.processIdentifier, SIGINT)
                    up.waitUntilExit()
                }
            }
            #expect(EdgesimProcess.waitUntil(seconds: 30) { FileManager.default.fileExists(atPath: ready) || !up.isRunning })
            try #require(up.isRunning)
            let pid = "\(up.processIdentifier)"

            let report = folder.appendingPathComponent("replay.json").path
            let mail = try EdgesimProcess.run([
                "replay", ReplayCommandTests.capture("smtp.pcapng"), "--to", pid, "--from", "paris", "--app", "mail.lab.example",
                "--compare", "exact", "--report", report,
            ])
            #expect(mail.status == 0, "\(mail.output)\n\(mail.errors)")
            #expect(mail.output.contains("paris → mail  1/1"), "\(mail.output)")
            let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [[String: Any]] ?? []
            #expect(results.count == 1)
            #expect(results.first?["bytesReceived"] as? Int == 221)

            let dns = try EdgesimProcess.run([
                "replay", ReplayCommandTests.capture("dns-dig.pcap"), "--to", pid, "--from", "madrid", "--map", "53=fleet_dns", "--speed",
                "0",
            ])
            #expect(dns.status == 0, "\(dns.output)\n\(dns.errors)")
            #expect(dns.output.contains("madrid → fleet_dns  5/5"), "\(dns.output)")

            // Mistakes are refused before anything is sent.
            let nobody = try EdgesimProcess.run([
                "replay", ReplayCommandTests.capture("http.pcap"), "--to", pid, "--from", "tokyo", "--app", "web",
            ])
            #expect(nobody.status == 1)
            #expect(nobody.errors.contains("'tokyo' is not a client of the fleet; its clients: paris, madrid"), "\(nobody.errors)")
            let usage = try EdgesimProcess.run(["replay", ReplayCommandTests.capture("http.pcap"), "--to", pid, "--from", "paris"])
            #expect(usage.status == 2)
            #expect(usage.errors.contains("give either --app or --map"), "\(usage.errors)")

            kill(up.processIdentifier, SIGINT)
            up.waitUntilExit()
            let gone = try EdgesimProcess.run([
                "replay", ReplayCommandTests.capture("http.pcap"), "--to", pid, "--from", "paris", "--app", "web",
            ])
            #expect(gone.status == 1)
            #expect(gone.errors.contains("no running edgesim up at \(pid)"), "\(gone.errors)")
        }
    }
}

extension FleetRuns {
    /// A capture written during a run (`capture:`) opens in tshark and replays green, in both
    /// modes: libpcap inside the client's namespace, or the loopback fabric writing what it carries.
    @Suite struct CaptureOutTests {
        @Test(arguments: EdgesimProcess.modes)
        func aRunsCaptureOpensInTsharkAndReplaysGreen(mode: String) throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-capture-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let file = folder.appendingPathComponent("paris.pcapng").path
            let apps = """
                apps:
                  - id: echo-tcp
                    protocol: tcp/7
                    dns: {type: CNAME, name: echo.lab.example}
                    origin_direct: ["tcp://echo:7"]
                  - id: echo-udp
                    protocol: udp/7
                    dns: {type: CNAME, name: udp.lab.example}
                    origin_direct: ["udp://udp-echo:7"]
                    proxy_protocol: "off"
                """
            let (recordFolder, record) = try EdgesimProcess.scenario(
                """
                name: record
                topology: REPO/topologies/replay-lab.yaml
                timeout: 30s
                \(apps)
                capture: {host: paris, file: \(file), filter: "port 7"}
                timeline:
                  - at: 0s
                    traffic: {from: paris, app: echo-tcp, connections: 20, concurrency: 4, bytes: 20KiB}
                  - at: 0s
                    traffic: {from: paris, app: echo-udp, connections: 10, bytes: 300}
                expect:
                  - success_rate: {app: echo-tcp, at_least: 100%}
                """)
            defer { try? FileManager.default.removeItem(at: recordFolder) }
            let recorded = try EdgesimProcess.run(["run", record, "--mode", mode])
            #expect(recorded.status == 0, "\(recorded.output)\n\(recorded.errors.suffix(2000))")
            let line = try #require(recorded.output.split(separator: "\n").first { $0.contains("paris → \(file)") }, "\(recorded.output)")
            let packets = Int(line.split(separator: ": ").last?.split(separator: " ").first ?? "") ?? 0
            #expect(packets > 0, "\(line)")

            // tshark reads every packet, and finds the 20 TCP connections and 10 UDP flows.
            if let tshark = ["/usr/bin/tshark"].first(where: FileManager.default.isExecutableFile) {
                let count = try EdgesimProcess.run(["-r", file, "-q", "-z", "conv,tcp", "-z", "conv,udp"], program: tshark)
                #expect(count.status == 0, "\(count.errors)")
                #expect(count.output.components(separatedBy: "<->").count - 1 == 30, "\(count.output)")
                let all = try EdgesimProcess.run(["-r", file], program: tshark)
                #expect(all.output.split(separator: "\n").count == packets)
            } else {
                try #require(ProcessInfo.processInfo.environment["CI"] != "true", "tshark comes from scripts/setup")
            }

            let (replayFolder, replay) = try EdgesimProcess.scenario(
                """
                name: replay-recorded
                topology: REPO/topologies/replay-lab.yaml
                timeout: 30s
                \(apps)
                timeline:
                  - at: 0s
                    replay: {pcap: \(file), from: paris, app: echo-tcp, compare: exact}
                  - at: 0s
                    replay: {pcap: \(file), from: paris, app: echo-udp, compare: exact}
                expect:
                  - replay_success: {app: echo-tcp, at_least: 100%}
                  - replay_success: {app: echo-udp, at_least: 90%}
                """)
            defer { try? FileManager.default.removeItem(at: replayFolder) }
            let replayed = try EdgesimProcess.run(["run", replay, "--mode", mode])
            #expect(replayed.status == 0, "\(replayed.output)\n\(replayed.errors.suffix(2000))")
            #expect(replayed.output.contains("paris → echo-tcp  20/20"), "\(replayed.output)")
        }
    }
}
