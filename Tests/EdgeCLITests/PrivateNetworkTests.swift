import Foundation
import Testing

extension FleetRuns {
    /// Without root, a run gets a network of its own (user, network and mount namespaces): every
    /// scenario runs, in netns mode, ports below 1024 bind, two runs on the same addresses coexist,
    /// `edgesim exec` reaches the fleet, and nothing is left in the machine's network. Run as
    /// `edgesim-test` (a user with subordinate ids that `scripts/setup --tests` makes; Postfix
    /// needs them), or else `nobody`. CI is root.
    @Suite(.enabled(if: EdgesimProcess.isRoot, "needs root to become another user"))
    struct PrivateNetworkTests {
        /// A folder the unprivileged user may read and write, with the executable and every scenario, topology
        /// and capture.
        static func sandbox() throws -> URL {
            let manager = FileManager.default
            let folder = manager.temporaryDirectory.appendingPathComponent("edgesim-nobody-\(UUID().uuidString)")
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            for sub in ["scenarios", "topologies"] {
                try manager.copyItem(at: EdgesimProcess.repository.appendingPathComponent(sub), to: folder.appendingPathComponent(sub))
            }
            try manager.copyItem(atPath: EdgesimProcess.executable, toPath: folder.appendingPathComponent("edgesim").path)
            // Every folder writable by that user (reports, captures written by the runs).
            for case let path as String in manager.enumerator(atPath: folder.path)! + [""] {
                let full = folder.appendingPathComponent(path).path
                var isFolder: ObjCBool = false
                if manager.fileExists(atPath: full, isDirectory: &isFolder), isFolder.boolValue {
                    try manager.setAttributes([.posixPermissions: 0o777], ofItemAtPath: full)
                }
            }
            return folder
        }

        /// The user the runs are made as: one with subordinate ids where there is one.
        static let user = getpwnam("edgesim-test") != nil ? "edgesim-test" : "nobody"

        static let nobody = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--"]

        static var tunOpenToEveryone: Bool {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: "/dev/net/tun"),
                let mode = attributes[.posixPermissions] as? Int
            else { return false }
            return mode & 0o006 == 0o006
        }

        static func asNobody(_ folder: URL, _ arguments: [String]) -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = nobody + [folder.appendingPathComponent("edgesim").path] + arguments
            process.currentDirectoryURL = folder
            return process
        }

        /// Every scenario in scenarios/, two at a time, unprivileged: each in netns mode in a private
        /// network of its own (several on the same addresses and namespace names at once), plus
        /// two in loopback mode inside one; nothing of any run in the machine's own network.
        @Test func everyScenarioRunsGreenTwoAtATime() throws {
            let folder = try Self.sandbox()
            defer { try? FileManager.default.removeItem(at: folder) }
            let before = Set(NetworkState.loopbackAddresses())
            let links = Set(NetworkState.links())
            let scenarios = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("scenarios").path)
                .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
            #expect(scenarios.count >= 18)
            // Postfix switches to users of its own, which only subordinate ids give a private network.
            let postfix = EdgesimProcess.canRunPostfix && Self.user == "edgesim-test"
            if ProcessInfo.processInfo.environment["CI"] == "true" { #expect(postfix, "scripts/setup --tests makes edgesim-test") }
            // The thousand-node fleet runs alone (ScenarioRunTests): beside another it would only
            // take that one's cores.
            var runs = scenarios.filter { ($0 != "mail-postfix" || postfix) && $0 != "metro-1000" }.map { ($0, "netns") }
            runs += [("lab-echo", "loopback"), ("rotation", "loopback")]
            var index = 0
            while index < runs.count {
                let pair = Array(runs[index..<min(index + 2, runs.count)])
                let finished = Locked([Int: EdgesimProcess.Finished]())
                DispatchQueue.concurrentPerform(iterations: pair.count) { slot in
                    let (name, mode) = pair[slot]
                    let arguments =
                        Self.nobody + ["./edgesim", "run", "scenarios/\(name).yaml"] + (mode == "loopback" ? ["--mode", mode] : [])
                    let run = try? EdgesimProcess.run(arguments, program: "/usr/bin/setpriv", directory: folder)
                    finished.mutate { $0[slot] = run }
                }
                for (slot, (name, mode)) in pair.enumerated() {
                    let run = try #require(finished.value[slot], "\(name) did not start")
                    let crash = run.errors.split(separator: "\n").filter { $0.contains("Fatal error") || $0.contains("Crash") }
                    #expect(run.status == 0, "\(name): \(run.output)\n\(crash)\n\(run.errors.suffix(2000))")
                    #expect(run.output.contains("scenario \(name) (\(mode) mode): PASSED"), "\(run.output)")
                    if mode == "netns" {
                        // An unprivileged run has TUN devices only where /dev/net/tun is open to
                        // everyone (udev's default rule makes it so); else veth pairs.
                        let links = Self.tunOpenToEveryone ? "links (TUN devices)" : "links (veth pairs through packet sockets)"
                        #expect(run.output.contains(links), "\(run.output)")
                    }
                }
                index += pair.count
            }
            // Nothing of any run in the machine's own network.
            #expect(Set(NetworkState.loopbackAddresses()) == before)
            #expect(Set(NetworkState.links()) == links)
            #expect(leftoverNamespaces().isEmpty)
        }

        @Test(arguments: ["netns", "loopback"])
        func aPrivateFleetIsReachedWithExec(mode: String) throws {
            guard let dig = UpCommandTests.tool("dig"), let socat = UpCommandTests.tool("socat") else {
                try #require(ProcessInfo.processInfo.environment["CI"] != "true", "dig and socat come from scripts/setup")
                return
            }
            let folder = try Self.sandbox()
            defer { try? FileManager.default.removeItem(at: folder) }
            let apps = folder.appendingPathComponent("apps.yaml")
            try """
            - id: echo
              protocol: tcp/7
              dns: {type: CNAME, name: echo.lab.example}
              origin_direct: ["tcp://echo:7"]
            """.write(to: apps, atomically: true, encoding: .utf8)
            let ready = folder.appendingPathComponent("ready").path
            let up = Self.asNobody(folder, ["up", "topologies/lab-3.yaml", "--apps", apps.path, "--ready-file", ready, "--mode", mode])
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
            // The fleet runs in the process edgesim started inside the private network (up prints its pid).
            let inner = try #require(Self.innerPID(of: up.processIdentifier), "no edgesim process inside the private network")

            func exec(_ command: [String], host: String? = nil, input: String? = nil) throws -> (Int32, String) {
                let process = Self.asNobody(folder, ["exec", "\(inner)"] + (host.map { ["--host", $0] } ?? []) + ["--"] + command)
                let out = Pipe()
                let into = Pipe()
                process.standardOutput = out
                process.standardInput = into
                process.standardError = FileHandle.nullDevice
                try process.run()
                if let input { try? into.fileHandleForWriting.writeAll(Data(input.utf8)) }
                try into.fileHandleForWriting.close()
                let text = String(decoding: try out.fileHandleForReading.readAll(), as: UTF8.self)
                process.waitUntilExit()
                return (process.terminationStatus, text)
            }
            // In netns mode the fleet's DNS answers on the anycast address inside the hosts' namespaces.
            let host = mode == "netns" ? "paris" : nil
            let server = mode == "netns" ? "198.18.255.53" : "127.53.0.53"
            let (status, answer) = try exec([dig, "@\(server)", "+short", "+time=2", "+tries=1", "echo.lab.example", "A"], host: host)
            #expect(status == 0)
            let address = answer.split(separator: "\n").last.map(String.init) ?? ""
            #expect(address.hasPrefix(mode == "netns" ? "198.19." : "127.19."), "dig answered '\(answer)'")
            let (echoed, text) = try exec([socat, "-t", "3", "-", "TCP:\(address):7"], host: host, input: "through a private edge\n")
            #expect(echoed == 0)
            #expect(text == "through a private edge\n")
            if mode == "netns" {
                // The hosts' namespaces are named in the run's own mount namespace only.
                #expect(!FileManager.default.fileExists(atPath: "/var/run/netns/edgesim-\(inner)-paris"))
                let (unknown, _) = try exec(["true"], host: "atlantis")
                #expect(unknown == 1)
            } else {
                // From outside the private network the loopback address is not there.
                let outside = try EdgesimProcess.run(["-t", "1", "-", "TCP:\(address):7,connect-timeout=1"], program: socat)
                #expect(outside.status != 0)
            }

            kill(up.processIdentifier, SIGINT)
            up.waitUntilExit()
            #expect(up.terminationStatus == 0)
            #expect(!FileManager.default.fileExists(atPath: "/proc/\(inner)"))
            let (gone, _) = try exec(["true"])
            #expect(gone == 1)
        }

        /// The edgesim process that runs inside the private network: the child of `pid` in another
        /// user namespace.
        static func innerPID(of pid: Int32) -> Int32? {
            let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let candidate = Int32(entry),
                    let status = try? String(contentsOfFile: "/proc/\(candidate)/status", encoding: .utf8),
                    status.contains("\nPPid:\t\(pid)\n"),
                    let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(candidate)/ns/user"), theirs != mine
                else { continue }
                return candidate
            }
            return nil
        }
    }
}

/// What the machine's own network holds, to see that a private run added nothing to it.
enum NetworkState {
    static func loopbackAddresses() -> [String] {
        guard let output = try? EdgesimProcess.run(["-o", "addr", "show", "dev", "lo"], program: "/usr/sbin/ip") else { return [] }
        return output.output.split(separator: "\n").map(String.init).sorted()
    }

    /// The machine's own interfaces, by name.
    static func links() -> [String] {
        guard let output = try? EdgesimProcess.run(["-o", "link", "show"], program: "/usr/sbin/ip") else { return [] }
        return output.output.split(separator: "\n").compactMap { $0.split(separator: ":").dropFirst().first.map(String.init) }.sorted()
    }
}
