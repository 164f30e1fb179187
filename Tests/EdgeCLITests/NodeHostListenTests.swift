import EdgeNet
import EdgeSim
import Foundation
import Testing

/// Scenarios whose edge nodes run in `edgesim node-host --listen` processes, as in node-host
/// pods: runs are green (nodes killed and frozen as the scenarios ask, IPv6 clients), in netns
/// mode every node's traffic crossed the tunnels, a runner with the wrong token is refused with
/// the reason, and when a run ends, or its runner is killed, the hosts keep nothing of it.
extension FleetRuns {
    @Suite struct NodeHostListenTests {
        /// Node-host processes listening on loopback for the runs of `scenario`, each with the
        /// lines it writes to standard error.
        final class Hosts: Sendable {
            let processes: [ChildProcess]
            let ports: [Int]
            let said: [Locked<[String]>]

            init(_ count: Int, scenario: String, mode: String, token: String) async throws {
                var processes: [ChildProcess] = []
                var ports: [Int] = []
                var said: [Locked<[String]>] = []
                for _ in 0..<count {
                    let process = try ChildProcess(
                        [
                            EdgesimProcess.executable, "node-host", "--listen", "127.0.0.1:0", "--scenario", scenario, "--mode", mode,
                            "--token-file", token,
                        ], output: .pipe, errors: .pipe)
                    processes.append(process)
                    let lines = Locked<[String]>([])
                    said.append(lines)
                    Task { for await line in LineStream.lines(of: process.errors!) { lines.mutate { $0.append(line) } } }
                    var printed = LineStream.lines(of: process.output!).makeAsyncIterator()
                    let first = await printed.next() ?? ""
                    ports.append(first.split(separator: ":").last.flatMap { Int($0) } ?? 0)
                }
                self.processes = processes
                self.ports = ports
                self.said = said
            }

            var addresses: String { ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

            /// Every host said its runner went, with this many nodes in all.
            func allSayTheRunnerWent(nodes: Int, netns: Bool) -> Bool {
                EdgesimProcess.waitUntil {
                    let counts = said.compactMap { lines in
                        lines.value.last { $0.contains(" went: ") }.flatMap { line in
                            line.split(separator: " ").firstIndex(of: "went:").flatMap { Int(line.split(separator: " ")[$0 + 1]) }
                        }
                    }
                    let cleaned = said.allSatisfy {
                        $0.value.last { $0.contains(" went: ") }?.hasSuffix(netns ? "their namespaces deleted" : "stopped") == true
                    }
                    return counts.count == said.count && counts.reduce(0, +) == nodes && cleaned
                }
            }

            func namespacesLeft() -> [String] {
                NetworkNamespace.list().filter { name in processes.contains { name.hasPrefix("edgesim-\($0.pid)-") } }
            }

            func stop() async -> [Int32] {
                for process in processes { process.signal(SIGTERM) }
                var statuses: [Int32] = []
                for process in processes { statuses.append(await process.exited()) }
                return statuses
            }
        }

        static func tokenFiles(in folder: URL) throws -> (right: String, wrong: String) {
            let right = folder.appendingPathComponent("token").path
            try "\(UUID().uuidString)\n".write(toFile: right, atomically: true, encoding: .utf8)
            let wrong = folder.appendingPathComponent("wrong").path
            try "guess\n".write(toFile: wrong, atomically: true, encoding: .utf8)
            return (right, wrong)
        }

        static var cases: [(String, String, Int)] {
            [("lab-echo", "loopback", 1)]
                + (EdgesimProcess.isRoot
                    ? [
                        ("lab-echo", "netns", 1), ("frozen-node", "netns", 1), ("global-failover", "netns", 2),
                        ("ipv6-clients", "netns", 1),
                    ]
                    : [])
        }

        @Test(arguments: cases)
        func aScenarioRunsGreenWithItsNodesInListeningNodeHosts(scenario name: String, mode: String, hostCount: Int) async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-listen-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let tokens = try Self.tokenFiles(in: folder)
            let scenario = EdgesimProcess.repository.appendingPathComponent("scenarios/\(name).yaml").path
            let hosts = try await Hosts(hostCount, scenario: scenario, mode: mode, token: tokens.right)
            defer { for process in hosts.processes { process.signal(SIGKILL) } }
            try #require(hosts.ports.allSatisfy { $0 > 0 })

            let run = try EdgesimProcess.run([
                "run", scenario, "--mode", mode, "--node-hosts", hosts.addresses, "--node-host-token", tokens.right,
            ])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario \(name) (\(mode) mode): PASSED"), "\(run.output)")
            let nodes = try #require(
                run.errors.split(separator: "\n").last { $0.hasPrefix("started ") }.flatMap { $0.split(separator: "/").last }
                    .flatMap { Int($0.split(separator: " ")[0]) }, "\(run.errors.suffix(2000))")
            #expect(hosts.allSayTheRunnerWent(nodes: nodes, netns: mode == "netns"), "\(hosts.said.map(\.value))")
            if mode == "netns" {
                // Each node's addresses are only in its host's namespaces: nothing is answered unless packets cross.
                let counts = try #require(
                    run.output.split(separator: "\n").first { $0.contains("tunnels to their \(nodes) nodes") }, "\(run.output)")
                #expect(!counts.contains(" 0 packets sent") && !counts.contains(" 0 received"), "\(counts)")
                #expect(hosts.namespacesLeft().isEmpty)
            }

            if name == "lab-echo" {
                let refused = try EdgesimProcess.run([
                    "run", scenario, "--mode", mode, "--node-hosts", hosts.addresses, "--node-host-token", tokens.wrong,
                ])
                #expect(refused.status != 0)
                #expect(
                    (refused.output + refused.errors).contains("refused the runner: wrong token"), "\(refused.output)\n\(refused.errors)")
            }
            #expect(await hosts.stop() == Array(repeating: 0, count: hostCount))
        }

        /// The runner and a node host each in a network stack of its own, joined by one link, as
        /// two pods on a cluster network are: the host is reached by name, its tunnel socket on its
        /// own address, and the runner learns that address from the connection.
        @Test(.enabled(if: EdgesimProcess.isRoot, "needs root: network namespaces"))
        func aScenarioRunsGreenWithTheRunnerAndItsNodesInSeparatePodNetworks() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-listen-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let tokens = try Self.tokenFiles(in: folder)
            let scenario = EdgesimProcess.repository.appendingPathComponent("scenarios/lab-echo.yaml").path
            let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
            let runnerPod = NetworkNamespace("\(tag)-runner")
            let nodePod = NetworkNamespace("\(tag)-nodes")
            try NetworkNamespace.create([runnerPod, nodePod])
            defer {
                NetworkNamespace.delete([runnerPod, nodePod])
                try? FileManager.default.removeItem(atPath: runnerPod.etcFolder)
            }
            let device = "es\(UInt16.random(in: 0...UInt16.max))"
            try IPCommand.batch(["link add \(device)a netns \(runnerPod.name) type veth peer name \(device)b netns \(nodePod.name)"])
            try IPCommand.batch(
                ["link set lo up", "addr add 198.19.254.1/30 dev \(device)a", "link set \(device)a up"], namespace: runnerPod.name)
            try IPCommand.batch(
                ["link set lo up", "addr add 198.19.254.2/30 dev \(device)b", "link set \(device)b up"], namespace: nodePod.name)
            // The runner's pod finds the node host by name, as through a headless Service.
            try FileManager.default.createDirectory(atPath: runnerPod.etcFolder, withIntermediateDirectories: true)
            try "127.0.0.1 localhost\n198.19.254.2 nodes-0.edgesim-nodes\n".write(
                toFile: runnerPod.etcFolder + "/hosts", atomically: true, encoding: .utf8)

            let host = try ChildProcess(
                [
                    IPCommand.executable, "netns", "exec", nodePod.name, EdgesimProcess.executable, "node-host", "--listen",
                    "198.19.254.2:7100", "--scenario", scenario, "--mode", "netns", "--token-file", tokens.right,
                ], output: .pipe, errors: .pipe)
            defer { host.signal(SIGKILL) }
            let said = Locked<[String]>([])
            Task { for await line in LineStream.lines(of: host.errors!) { said.mutate { $0.append(line) } } }
            var printed = LineStream.lines(of: host.output!).makeAsyncIterator()
            #expect(await printed.next() == "listening on 198.19.254.2:7100")

            let run = try EdgesimProcess.run(
                [
                    "netns", "exec", runnerPod.name, EdgesimProcess.executable, "run", scenario, "--mode", "netns", "--node-hosts",
                    "nodes-0.edgesim-nodes:7100", "--node-host-token", tokens.right,
                ], program: IPCommand.executable)
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario lab-echo (netns mode): PASSED"), "\(run.output)")
            #expect(run.output.contains("node hosts: 1 elsewhere (nodes-0.edgesim-nodes:7100)"), "\(run.output)")
            #expect(said.value.contains("runner 198.19.254.1 connected: hosting 3 nodes"), "\(said.value)")
            #expect(EdgesimProcess.waitUntil { said.value.contains { $0.hasSuffix("went: 3 nodes stopped, their namespaces deleted") } })
            host.signal(SIGTERM)
            #expect(await host.exited() == 0)
        }

        /// The pod network between a runner (`edgesim up`) and its node host goes dark, with no
        /// connection closed: each side gives the other up within half a minute, the runner
        /// reports the host's nodes gone, and the host deletes what it made for them.
        @Test(.enabled(if: EdgesimProcess.isRoot, "needs root: network namespaces"))
        func whenThePodNetworkGoesDarkBothSidesGiveUpAndTheHostCleansUp() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-listen-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let tokens = try Self.tokenFiles(in: folder)
            let topology = EdgesimProcess.repository.appendingPathComponent("topologies/lab-3.yaml").path
            let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
            let runnerPod = NetworkNamespace("\(tag)-runner")
            let nodePod = NetworkNamespace("\(tag)-nodes")
            try NetworkNamespace.create([runnerPod, nodePod])
            defer { NetworkNamespace.delete([runnerPod, nodePod]) }
            let device = "es\(UInt16.random(in: 0...UInt16.max))"
            try IPCommand.batch(["link add \(device)a netns \(runnerPod.name) type veth peer name \(device)b netns \(nodePod.name)"])
            try IPCommand.batch(
                ["link set lo up", "addr add 198.19.254.1/30 dev \(device)a", "link set \(device)a up"], namespace: runnerPod.name)
            try IPCommand.batch(
                ["link set lo up", "addr add 198.19.254.2/30 dev \(device)b", "link set \(device)b up"], namespace: nodePod.name)

            let host = try ChildProcess(
                [
                    IPCommand.executable, "netns", "exec", nodePod.name, EdgesimProcess.executable, "node-host", "--listen",
                    "198.19.254.2:7100", "--topology", topology, "--mode", "netns", "--token-file", tokens.right,
                ], output: .pipe, errors: .pipe)
            defer { host.signal(SIGKILL) }
            let hostSaid = Locked<[String]>([])
            Task { for await line in LineStream.lines(of: host.errors!) { hostSaid.mutate { $0.append(line) } } }
            var printed = LineStream.lines(of: host.output!).makeAsyncIterator()
            #expect(await printed.next() == "listening on 198.19.254.2:7100")
            // `ip netns exec` execs edgesim: the same process.
            let hostPID = host.pid

            let up = try ChildProcess(
                [
                    IPCommand.executable, "netns", "exec", runnerPod.name, EdgesimProcess.executable, "up", topology, "--mode", "netns",
                    "--node-hosts", "198.19.254.2:7100", "--node-host-token", tokens.right,
                ], output: .null, errors: .pipe)
            defer { up.signal(SIGKILL) }
            let upSaid = Locked<[String]>([])
            Task { for await line in LineStream.lines(of: up.errors!) { upSaid.mutate { $0.append(line) } } }
            #expect(EdgesimProcess.waitUntil(seconds: 30) { upSaid.value.contains("started 3/3 edge nodes") }, "\(upSaid.value)")
            #expect(NetworkNamespace.list().filter { $0.hasPrefix("edgesim-\(hostPID)-") }.count == 3)

            // Packets now vanish both ways; neither side closes anything.
            try IPCommand.batch(["link set \(device)b down"], namespace: nodePod.name)
            #expect(
                EdgesimProcess.waitUntil(seconds: 60) {
                    hostSaid.value.contains { $0.hasSuffix("went: 3 nodes stopped, their namespaces deleted") }
                },
                "\(hostSaid.value)")
            #expect(NetworkNamespace.list().filter { $0.hasPrefix("edgesim-\(hostPID)-") }.isEmpty)
            #expect(
                EdgesimProcess.waitUntil(seconds: 60) {
                    upSaid.value.filter { $0.contains("exited unexpectedly (status 255)") }.count == 3
                },
                "\(upSaid.value.suffix(20))")
            up.signal(SIGTERM)
            #expect(await up.exited() == 0)
            host.signal(SIGTERM)
            #expect(await host.exited() == 0)
        }

        /// A runner killed mid-run: its connection closes with it, and the host stops its nodes
        /// and deletes their namespaces by itself.
        @Test(.enabled(if: EdgesimProcess.isRoot, "needs root: netns mode"))
        func aKilledRunnersNodesAndNamespacesGoFromTheHost() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-listen-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let tokens = try Self.tokenFiles(in: folder)
            let scenario = EdgesimProcess.repository.appendingPathComponent("scenarios/lab-echo.yaml").path
            let hosts = try await Hosts(1, scenario: scenario, mode: "netns", token: tokens.right)
            defer { for process in hosts.processes { process.signal(SIGKILL) } }

            let runner = try ChildProcess(
                [
                    EdgesimProcess.executable, "run", scenario, "--mode", "netns", "--node-hosts", hosts.addresses, "--node-host-token",
                    tokens.right,
                ],
                output: .null, errors: .pipe)
            defer { runner.signal(SIGKILL) }
            var progress = LineStream.lines(of: runner.errors!).makeAsyncIterator()
            while let line = await progress.next(), !line.hasPrefix("started 3/3 edge nodes") {}
            #expect(EdgesimProcess.waitUntil { !hosts.namespacesLeft().isEmpty })
            runner.signal(SIGKILL)
            _ = await runner.exited()
            #expect(hosts.allSayTheRunnerWent(nodes: 3, netns: true), "\(hosts.said.map(\.value))")
            #expect(hosts.namespacesLeft().isEmpty)
            // What the killed runner itself made is for `edgesim clean`, as after any crash.
            let cleaned = try EdgesimProcess.run(["clean"])
            #expect(cleaned.status == 0, "\(cleaned.output)\n\(cleaned.errors)")
            #expect(!NetworkNamespace.list().contains { $0.hasPrefix("edgesim-\(runner.pid)-") })
            #expect(await hosts.stop() == [0])
        }
    }
}
