import EdgeModel
import Foundation
import Testing

extension FleetRuns {
    /// `edgesim up` keeps a fleet running for tools outside edgesim: dig finds the application
    /// through the fleet's DNS, socat reaches it through the nearest edge, SIGUSR1 rotates the
    /// address, Ctrl-C stops everything.
    @Suite struct UpCommandTests {
        static func tool(_ name: String) -> String? {
            ["/usr/bin/\(name)", "/bin/\(name)", "/usr/sbin/\(name)"].first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        /// `edgesim up` on a topology of the repository, until its ready file appears; killed after
        /// 90 s at the latest (cancel the watchdog once it has stopped).
        func startUp(_ topology: String, apps: String, mode: String, folder: URL, _ extra: [String] = []) throws -> (
            Process, Pipe, DispatchWorkItem
        ) {
            let ready = folder.appendingPathComponent("ready").path
            let up = Process()
            up.executableURL = URL(fileURLWithPath: EdgesimProcess.executable)
            up.arguments =
                [
                    "up", EdgesimProcess.repository.appendingPathComponent("topologies/\(topology).yaml").path, "--apps", apps, "--mode",
                    mode,
                ]
                + ["--dns-port", "5300", "--ready-file", ready] + extra
            let output = Pipe()
            up.standardOutput = output
            up.standardError = FileHandle.nullDevice
            try up.run()
            let watchdog = DispatchWorkItem { kill(up.processIdentifier, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: watchdog)
            #expect(
                EdgesimProcess.waitUntil(seconds: 30) { FileManager.default.fileExists(atPath: ready) || !up.isRunning },
                "the fleet never came up")
            try #require(up.isRunning)
            return (up, output, watchdog)
        }

        /// The applications most tests bring up: one TCP echo, echo.up.example on port 8000, to
        /// the Seattle origin of world-21.
        static let echoApps = """
            - id: echo
              protocol: tcp/8000
              dns: {type: CNAME, name: echo.up.example}
              origin_direct: ["tcp://origin-seattle:8000"]
            """

        /// Where `up` serves its API (`address:port`), as it wrote it into its fleet.json.
        func apiAddress(of up: Process) throws -> String {
            let fleet = try String(contentsOfFile: "/tmp/edgesim-up-\(up.processIdentifier)/fleet.json", encoding: .utf8)
            return String(try #require(fleet.firstMatch(of: /"api" : "http:\\\/\\\/([^"]+)"/)?.1))
        }

        /// Runs a tool, from inside a namespace when one is given; its output.
        func tool(_ arguments: [String], in namespace: String?) throws -> String {
            let process = Process()
            let line = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + arguments } ?? arguments
            process.executableURL = URL(fileURLWithPath: line[0])
            process.arguments = Array(line.dropFirst())
            let output = Pipe()
            let input = Pipe()
            process.standardOutput = output
            process.standardInput = input
            try process.run()
            // A tool that exits without reading (a refused connection) must not end the tests with SIGPIPE.
            signal(SIGPIPE, SIG_IGN)
            try? input.fileHandleForWriting.writeAll(Data("hello through the edge\n".utf8))
            try input.fileHandleForWriting.close()
            let data = try output.fileHandleForReading.readAll()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }

        @Test(arguments: EdgesimProcess.modes)
        func outsideToolsReachTheFleetAndCtrlCStopsIt(mode: String) throws {
            guard let dig = Self.tool("dig"), let socat = Self.tool("socat") else {
                try #require(ProcessInfo.processInfo.environment["CI"] != "true", "dig and socat come from scripts/setup")
                print("skipped: dig or socat is not installed (scripts/setup installs them)")
                return
            }
            let (folder, apps) = try EdgesimProcess.scenario(Self.echoApps)
            defer { try? FileManager.default.removeItem(at: folder) }
            let (up, output, watchdog) = try startUp("world-21", apps: apps, mode: mode, folder: folder)
            defer { watchdog.cancel() }

            let namespace = mode == "netns" ? "edgesim-\(up.processIdentifier)-paris" : nil
            let server = mode == "netns" ? ["@198.18.255.53"] : ["@127.53.0.53", "-p", "5300"]
            func resolve() throws -> String {
                try tool([dig] + server + ["+short", "+time=2", "+tries=1", "echo.up.example", "A"], in: namespace)
                    .split(separator: "\n").last.map(String.init) ?? ""
            }
            let first = try resolve()
            #expect(first.hasPrefix(mode == "netns" ? "198.19." : "127.19."), "dig answered '\(first)'")
            let echoed = try tool([socat, "-t", "3", "-", "TCP:\(first):8000"], in: namespace)
            #expect(echoed == "hello through the edge\n")

            // Reverse DNS: a client's address names it and the name points back (forward-confirmed);
            // application addresses have no PTR.
            let paris =
                try tool([dig] + server + ["+short", "+time=2", "+tries=1", "paris.hosts.edgesim.test", "A"], in: namespace)
                .split(separator: "\n").last.map(String.init) ?? ""
            #expect(paris.hasPrefix(mode == "netns" ? "198.18." : "127.18."), "dig answered '\(paris)'")
            let ptr = try tool([dig] + server + ["+short", "+time=2", "+tries=1", "-x", paris], in: namespace)
            #expect(ptr.contains("paris.hosts.edgesim.test."), "dig -x \(paris) answered '\(ptr)'")
            let none = try tool([dig] + server + ["+time=2", "+tries=1", "-x", first], in: namespace)
            #expect(none.contains("status: NXDOMAIN") && none.contains("flags: qr aa"), "dig -x \(first) answered '\(none)'")

            if mode == "netns" {
                // IPv6 end to end: the AAAA record, then TCP over IPv6 through the nearest edge.
                let v6 =
                    try tool([dig] + server + ["+short", "+time=2", "+tries=1", "echo.up.example", "AAAA"], in: namespace)
                    .split(separator: "\n").last.map(String.init) ?? ""
                #expect(v6.hasPrefix("2001:db8:a:"), "dig answered '\(v6)'")
                #expect(try tool([socat, "-t", "3", "-", "TCP6:[\(v6)]:8000"], in: namespace) == "hello through the edge\n")
                // `edgesim exec --host`, as up prints it, reaches the same host's namespace.
                let exec = [EdgesimProcess.executable, "exec", "\(up.processIdentifier)", "--host", "paris", "--"]
                #expect(try tool(exec + [socat, "-t", "3", "-", "TCP:\(first):8000"], in: nil) == "hello through the edge\n")
            }

            kill(up.processIdentifier, SIGUSR1)
            #expect(EdgesimProcess.waitUntil(seconds: 30) { ((try? resolve()) ?? first) != first }, "SIGUSR1 should rotate the address")

            kill(up.processIdentifier, SIGINT)
            up.waitUntilExit()
            #expect(up.terminationReason == .exit && up.terminationStatus == 0)
            let printed = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
            #expect(printed.contains("rotated echo: \(first)"), "\(printed)")
            let host = mode == "netns" ? " --host paris" : ""
            #expect(printed.contains("reach it with: edgesim exec \(up.processIdentifier)\(host) -- dig"), "\(printed)")
            #expect(leftoverNamespaces().isEmpty)
            #expect(
                ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []).allSatisfy {
                    !$0.hasPrefix("edgesim-\(up.processIdentifier)-")
                })
        }

        /// An https application on a fleet `edgesim up` keeps: curl, trusting only the CA whose
        /// path up printed, gets the origin's answer, and the origin got the client's address.
        @Test(arguments: EdgesimProcess.modes)
        func curlTrustsTheCAUpPrintsAndReachesAnHTTPSApplication(mode: String) throws {
            guard let curl = Self.tool("curl"), let dig = Self.tool("dig") else {
                try #require(ProcessInfo.processInfo.environment["CI"] != "true", "curl and dig come from scripts/setup")
                print("skipped: curl or dig is not installed (scripts/setup installs them)")
                return
            }
            let (folder, apps) = try EdgesimProcess.scenario(
                """
                - id: www
                  protocol: tcp/443
                  dns: {type: CNAME, name: www.up.example}
                  origin_direct: ["tcp://web:80"]
                  tls: flexible
                  traffic_type: https
                """)
            defer { try? FileManager.default.removeItem(at: folder) }
            let certificates = folder.appendingPathComponent("tls").path
            let (up, output, watchdog) = try startUp("tls-lab", apps: apps, mode: mode, folder: folder, ["--certificates", certificates])
            defer { watchdog.cancel() }

            let namespace = mode == "netns" ? "edgesim-\(up.processIdentifier)-paris" : nil
            let server = mode == "netns" ? ["@198.18.255.53"] : ["@127.53.0.53", "-p", "5300"]
            let address =
                try tool([dig] + server + ["+short", "+time=2", "+tries=1", "www.up.example", "A"], in: namespace)
                .split(separator: "\n").last.map(String.init) ?? ""
            let ca = "\(certificates)/ca.pem"
            let answer = try tool(
                [
                    curl, "--silent", "--show-error", "--max-time", "10", "--cacert", ca, "--resolve", "www.up.example:443:\(address)",
                    "https://www.up.example/",
                ], in: namespace)
            #expect(answer.contains("edgesim origin: GET / HTTP/1.1"), "curl got '\(answer)' from \(address)")
            #expect(answer.contains("CF-Connecting-IP: ") && answer.contains("X-Forwarded-Proto: https"), "\(answer)")

            kill(up.processIdentifier, SIGINT)
            up.waitUntilExit()
            #expect(up.terminationReason == .exit && up.terminationStatus == 0)
            let printed = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
            #expect(printed.contains("TLS: the fleet's CA is \(ca) (curl --cacert \(ca) https://www.up.example/"), "\(printed)")
            #expect(FileManager.default.fileExists(atPath: ca), "--certificates keeps the CA after the fleet stops")
        }
    }
}
