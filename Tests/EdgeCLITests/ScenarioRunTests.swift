import Foundation
import Testing

/// Every scenario in scenarios/ runs green through `edgesim run`, in loopback mode and (as
/// root) in netns mode, and writes a JSON report and JUnit XML that agree with it.
extension FleetRuns {
    @Suite struct ScenarioRunTests {
        static let scenarios = [
            "lab-echo", "smtp-client-address", "rotation", "global-failover", "world-21", "excluded-region", "mail-checks",
            "frozen-node", "soak", "origin-faults", "idle-flood", "slow-origin", "origin-dns", "replay-lab",
        ]

        /// Scenarios that need netns mode (smart routing measures paths between namespaces;
        /// IPv6 clients; a thousand nodes).
        static let netnsOnly = ["argo-lab", "replay-ipv6", "ipv6-clients", "metro-1000"]

        static var cases: [(String, String)] {
            scenarios.flatMap { scenario in EdgesimProcess.modes.map { (scenario, $0) } }
                + (EdgesimProcess.isRoot ? netnsOnly.map { ($0, "netns") } : [])
        }

        @Test(arguments: cases)
        func runsGreen(scenario: String, mode: String) throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-run-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let report = folder.appendingPathComponent("report.json").path
            let junit = folder.appendingPathComponent("junit.xml").path
            let path = EdgesimProcess.repository.appendingPathComponent("scenarios/\(scenario).yaml").path
            let html = folder.appendingPathComponent("report.html").path
            let run = try EdgesimProcess.run(["run", path, "--mode", mode, "--report", report, "--junit", junit, "--html", html])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario \(scenario) (\(mode) mode): PASSED"), "\(run.output)")
            if scenario == "mail-checks" {
                // The origins' own view: without PROXY they checked the edge, with it each sender.
                #expect(run.output.contains("mx-plain (smtp) from london ["), "\(run.output)")
                #expect(run.output.contains("mx-v1 (smtp) from paris-mta [") && run.output.contains("10× accepted"), "\(run.output)")
                #expect(run.output.contains("mx-v2 (smtp) from madrid-dsl ["), "\(run.output)")
            }
            if scenario == "argo-lab" {
                // Chennai's smart-routed connections and flows went through Tokyo, and the report says so.
                #expect(run.output.contains("client-maa → echo-argo: relayed by smart routing: maa→nrt 20"), "\(run.output)")
                #expect(run.output.contains("client-maa → udp-argo: relayed by smart routing: maa→nrt 20"), "\(run.output)")
            }

            let json = try EdgesimProcess.report(at: report)
            #expect(json["outcome"] as? String == "passed")
            if scenario == "origin-faults" {
                // The hang is survived; the resets are what fails, and the report says so.
                #expect(run.output.contains("× connection closed after 0 of 1024 bytes came back"), "\(run.output)")
            }
            if scenario == "frozen-node" {
                // While London was frozen and withdrawn, Paris's new connections went to Amsterdam.
                let traffic = json["traffic"] as? [[String: Any]] ?? []
                let served = traffic.first?["servedBy"] as? [String: Int] ?? [:]
                #expect(served["ams", default: 0] > 0, "\(served)")
                // The HTML report, as a browser opens it: no console errors, and the charts of
                // this run (first-byte histogram, served-by split, timeline with the freeze).
                if HeadlessChromium.path != nil || !HeadlessChromium.mayBeMissing {
                    let page = try HeadlessChromium.open(html)
                    #expect(page.console.isEmpty, "\(page.console)")
                    #expect(page.dom.contains("PASSED") && page.dom.contains("node lhr: freeze"), "\(page.dom.prefix(3000))")
                    #expect(page.dom.components(separatedBy: "<svg").count - 1 == 3, "\(page.dom.prefix(3000))")
                    #expect(page.dom.contains("<title>ams: \(served["ams", default: 0])</title>"), "served-by share of ams")
                }
                let downs = json["nodeDowns"] as? [[String: Any]] ?? []
                #expect(downs.first?["node"] as? String == "lhr")
                #expect(downs.first?["backAt"] != nil, "it answered again after the thaw")
            }
            if scenario == "ipv6-clients" {
                // IPv6-only clients went over IPv6 every time. Happy eyeballs did too, but for a
                // handshake the links' 0.1% loss delayed past 250 ms: then IPv4 is started and may
                // win, as RFC 8305 means it to (about one run in ten sees one such connection).
                let traffic = json["traffic"] as? [[String: Any]] ?? []
                #expect(traffic.count == 3)
                for row in traffic {
                    let families = row["families"] as? [String: Int] ?? [:]
                    if row["app"] as? String == "echo-dual" {
                        #expect(families.values.reduce(0, +) == 50 && families["ipv6", default: 0] >= 47, "\(row)")
                    } else {
                        // Only answered exchanges count: a UDP datagram the links lost has none
                        // (the scenario allows 4% of those).
                        #expect(Set(families.keys) == ["ipv6"], "\(row)")
                        #expect(families.values.reduce(0, +) == row["succeeded"] as? Int, "\(row)")
                        if row["app"] as? String == "echo-v6" { #expect(families["ipv6"] == 50, "\(row)") }
                    }
                }
            }
            if scenario.hasPrefix("replay-") {
                // Every replayed flow completed with the captured replies, and the report lists each step.
                let replays = json["replays"] as? [[String: Any]] ?? []
                #expect(replays.count == (scenario == "replay-lab" ? 5 : 2), "\(replays)")
                #expect(replays.allSatisfy { ($0["flows"] as? Int ?? 0) > 0 && $0["succeeded"] as? Int == $0["flows"] as? Int })
                #expect(run.output.contains("replayed captures:"), "\(run.output)")
            }
            #expect(json["mode"] as? String == mode)
            let checks = json["checks"] as? [[String: Any]] ?? []
            #expect(!checks.isEmpty)
            #expect(checks.allSatisfy { $0["passed"] as? Bool == true && ($0["measured"] as? String)?.isEmpty == false })
            let xml = try String(contentsOfFile: junit, encoding: .utf8)
            #expect(xml.components(separatedBy: "<testcase ").count - 1 == checks.count)
            #expect(xml.contains("failures=\"0\""))
            // Nothing of the run is left behind.
            #expect(leftoverNamespaces().isEmpty)
        }

        /// `--duration` plays the timeline again on the same fleet until the time has passed; the
        /// checks and the report cover every pass.
        @Test func aDurationPlaysTheTimelineAgainAndAgain() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-run-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let report = folder.appendingPathComponent("report.json").path
            let path = EdgesimProcess.repository.appendingPathComponent("scenarios/lab-echo.yaml").path
            let once = try EdgesimProcess.run(["run", path, "--mode", "loopback", "--report", report])
            let attempted = { (json: [String: Any]) in
                (json["traffic"] as? [[String: Any]] ?? []).map { $0["attempted"] as? Int ?? 0 }.reduce(0, +)
            }
            let single = attempted(try EdgesimProcess.report(at: report))
            #expect(once.status == 0 && single > 0, "\(once.output)")
            let repeated = try EdgesimProcess.run(["run", path, "--mode", "loopback", "--duration", "1s", "--report", report])
            #expect(repeated.status == 0, "\(repeated.output)\n\(repeated.errors.suffix(2000))")
            // One pass already takes longer than 1 s: played once, and said so.
            #expect(repeated.output.contains("the timeline was played once"), "\(repeated.output)")
            let twice = try EdgesimProcess.run(["run", path, "--mode", "loopback", "--duration", "6s", "--report", report])
            #expect(twice.errors.contains("pass 2 of the timeline"), "\(twice.errors.suffix(2000))")
            let passes = Int(twice.output.split(separator: "played ").last?.prefix { $0.isNumber } ?? "") ?? 0
            #expect(passes >= 2)
            #expect(attempted(try EdgesimProcess.report(at: report)) == single * passes)
            let refused = try EdgesimProcess.run(["run", path, "--duration", "0s"])
            #expect(refused.status != 0 && refused.errors.contains("--duration must be above zero"), "\(refused.errors)")
        }

        /// Debian's Postfix behind the edge (netns mode): rejects the edge's address without
        /// PROXY protocol, logs each sender's own address with it. CI installs Postfix; elsewhere
        /// the test is skipped when it is missing.
        @Test(
            .enabled(if: EdgesimProcess.isRoot, "netns mode needs root"),
            .enabled(if: EdgesimProcess.canRunPostfix, "postfix is not installed (scripts/setup installs it)"))
        func postfixBehindTheEdge() throws {
            let path = EdgesimProcess.repository.appendingPathComponent("scenarios/mail-postfix.yaml").path
            let run = try EdgesimProcess.run(["run", path, "--mode", "netns"])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario mail-postfix (netns mode): PASSED"), "\(run.output)")
            // Postfix's own log, read back: the edge refused, each sender's address as PROXY told it.
            #expect(run.output.contains("postfix-plain (postfix) from london ["), "\(run.output)")
            #expect(run.output.contains("450 4.7.25 Client host rejected: cannot find your hostname"), "\(run.output)")
            #expect(run.output.contains("postfix-proxy (postfix) from paris-mta ["), "\(run.output)")
            #expect(run.output.contains("10× accepted"), "\(run.output)")
            #expect(leftoverNamespaces().isEmpty)
            let scratch = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
            #expect(!scratch.contains { $0.hasPrefix("edgesim-postfix-") }, "\(scratch)")
            #expect(leftoverNamespaces(in: "/etc/netns").isEmpty)
        }

        @Test func aPostfixOriginInLoopbackModeIsRefusedBeforeAnythingStarts() throws {
            let path = EdgesimProcess.repository.appendingPathComponent("scenarios/mail-postfix.yaml").path
            let run = try EdgesimProcess.run(["run", path, "--mode", "loopback", "--dns-port", "5300"])
            #expect(run.status != 0)
            #expect(run.errors.contains("origin postfix-plain (kind postfix) runs in netns mode only"), "\(run.errors)")
            #expect(!run.output.contains("started"), "\(run.output)")
        }

        /// Loopback mode on the machine's own loopback is what users without root get where user
        /// namespaces are not allowed (`EDGESIM_NO_PRIVATE_NETWORK` asks for it): run world-21
        /// (ports above 1024) as `nobody`, from a copy of the executable and files it may read.
        @Test(.enabled(if: EdgesimProcess.isRoot, "already not root: the loopback runs above are the unprivileged path"))
        func loopbackModeRunsGreenWithoutRoot() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-nobody-\(UUID().uuidString)")
            let manager = FileManager.default
            for sub in ["scenarios", "topologies"] {
                try manager.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            defer { try? manager.removeItem(at: folder) }
            for file in ["scenarios/world-21.yaml", "topologies/world-21.yaml"] {
                try manager.copyItem(at: EdgesimProcess.repository.appendingPathComponent(file), to: folder.appendingPathComponent(file))
            }
            let binary = folder.appendingPathComponent("edgesim").path
            try manager.copyItem(atPath: EdgesimProcess.executable, toPath: binary)
            for path in [folder.path, folder.appendingPathComponent("scenarios").path, folder.appendingPathComponent("topologies").path] {
                try manager.setAttributes([.posixPermissions: 0o777], ofItemAtPath: path)
            }
            let report = folder.appendingPathComponent("report.json").path
            let run = try EdgesimProcess.run(
                [
                    "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/env", "EDGESIM_NO_PRIVATE_NETWORK=1", binary, "run",
                    folder.appendingPathComponent("scenarios/world-21.yaml").path, "--report", report,
                ], program: "/usr/bin/setpriv", directory: folder)
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(2000))")
            #expect(run.output.contains("scenario world-21 (loopback mode): PASSED"), "\(run.output)")
            #expect(try EdgesimProcess.report(at: report)["outcome"] as? String == "passed")
        }

        @Test func anInvalidScenarioExitsTwoWithItsLineAndStartsNothing() throws {
            let (folder, path) = try EdgesimProcess.scenario(
                """
                name: broken
                topology: REPO/topologies/lab-3.yaml
                apps:
                  - id: a
                    protocol: tcp/7
                    dns: {type: CNAME, name: a.lab.example}
                    origin_direct: ["tcp://nowhere:7"]
                timeline:
                  - at: 0s
                    traffic: {from: paris, app: a, connections: 1}
                """)
            defer { try? FileManager.default.removeItem(at: folder) }
            let run = try EdgesimProcess.run(["run", path])
            #expect(run.status == 2)
            #expect(run.errors.contains("scenario.yaml:4:5: apps[a].origin_direct[0]"), "\(run.errors)")
            #expect(run.errors.contains("nowhere"), "\(run.errors)")
            #expect(!run.errors.contains("starting"))
        }
    }
}

/// Namespaces of this project (or their /etc/netns folders) that belong to no running process.
func leftoverNamespaces(in folder: String = "/var/run/netns") -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { name in
        guard name.hasPrefix("edgesim-"), let pid = name.dropFirst(8).split(separator: "-").first.flatMap({ Int32($0) }) else {
            return false
        }
        return kill(pid, 0) != 0
    }
}
