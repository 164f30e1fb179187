import Foundation
import Testing

extension FleetRuns {
    /// Without root, a run gets a network of its own (a user and network namespace): ports below
    /// 1024 bind, two runs on the same addresses coexist, `edgesim exec` reaches the fleet, and
    /// nothing is left in the machine's network. Run as `nobody` (CI is root).
    @Suite(.enabled(if: EdgesimProcess.isRoot, "needs root to become nobody"))
    struct PrivateNetworkTests {
        /// A folder `nobody` may read and write, with the executable and the files the runs use.
        static func sandbox() throws -> URL {
            let manager = FileManager.default
            let folder = manager.temporaryDirectory.appendingPathComponent("edgesim-nobody-\(UUID().uuidString)")
            for sub in ["scenarios", "scenarios/apps", "topologies"] {
                try manager.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
                try manager.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder.appendingPathComponent(sub).path)
            }
            try manager.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder.path)
            for file in [
                "scenarios/lab-echo.yaml", "scenarios/rotation.yaml", "topologies/lab-3.yaml", "scenarios/smtp-client-address.yaml",
                "scenarios/apps/smtp-export.json", "topologies/smtp-edge.yaml",
            ] {
                try manager.copyItem(at: EdgesimProcess.repository.appendingPathComponent(file), to: folder.appendingPathComponent(file))
            }
            try manager.copyItem(atPath: EdgesimProcess.executable, toPath: folder.appendingPathComponent("edgesim").path)
            return folder
        }

        static let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]

        static func asNobody(_ folder: URL, _ arguments: [String]) -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = nobody + [folder.appendingPathComponent("edgesim").path] + arguments
            process.currentDirectoryURL = folder
            return process
        }

        @Test func scenariosOnLowPortsRunGreenThreeAtOnce() throws {
            let folder = try Self.sandbox()
            defer { try? FileManager.default.removeItem(at: folder) }
            let before = Set(NetworkState.loopbackAddresses())
            // lab-echo and rotation listen on port 7, the mail scenario on 25 and 587; all three use
            // the same addresses at the same time, each in its own network.
            let runs = ["lab-echo", "rotation", "smtp-client-address"].map { name in
                let process = Self.asNobody(folder, ["run", "scenarios/\(name).yaml"])
                let output = Pipe()
                process.standardOutput = output
                process.standardError = FileHandle.nullDevice
                return (name, process, output)
            }
            for (_, process, _) in runs { try process.run() }
            for (name, process, output) in runs {
                let printed = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(name): \(printed)")
                #expect(printed.contains("scenario \(name) (loopback mode): PASSED"), "\(printed)")
            }
            // Nothing of either run in the machine's own network.
            #expect(Set(NetworkState.loopbackAddresses()) == before)
            #expect(leftoverNamespaces().isEmpty)
        }

        @Test func aPrivateFleetIsReachedWithExec() throws {
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
            let up = Self.asNobody(folder, ["up", "topologies/lab-3.yaml", "--apps", apps.path, "--ready-file", ready])
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

            func exec(_ command: [String], input: String? = nil) throws -> (Int32, String) {
                let process = Self.asNobody(folder, ["exec", "\(inner)", "--"] + command)
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
            let (status, answer) = try exec([dig, "@127.53.0.53", "+short", "+time=2", "+tries=1", "echo.lab.example", "A"])
            #expect(status == 0)
            let address = answer.split(separator: "\n").last.map(String.init) ?? ""
            #expect(address.hasPrefix("127.19."), "dig answered '\(answer)'")
            let (echoed, text) = try exec([socat, "-t", "3", "-", "TCP:\(address):7"], input: "through a private edge\n")
            #expect(echoed == 0)
            #expect(text == "through a private edge\n")
            // From outside the private network the address is not there.
            let outside = try EdgesimProcess.run(["-t", "1", "-", "TCP:\(address):7,connect-timeout=1"], program: socat)
            #expect(outside.status != 0)

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
}
