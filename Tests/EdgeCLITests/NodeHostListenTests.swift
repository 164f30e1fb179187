import EdgeNet
import EdgeSim
import Foundation
import Testing

/// Scenarios whose edge nodes run in `edgesim node-host --listen` processes, as in node-host
/// pods: runs are green (nodes killed and frozen as the scenarios ask, IPv6 clients, edge TLS
/// with the runner's certificates given to the hosts), in netns
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
                        ("ipv6-clients", "netns", 1), ("edge-tls", "netns", 1),
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

        /// Two network stacks joined by one link, as a runner's pod and a node-host pod are on a
        /// cluster network (198.19.254.1 and .2), with the node host listening in its own.
        final class PodPair: Sendable {
            let runner: NetworkNamespace
            let nodes: NetworkNamespace
            let device: String
            let host: ChildProcess
            /// What the node host writes to standard error.
            let said = Locked<[String]>([])
            /// The first line it printed.
            let printed: String

            init(hostArguments: [String]) async throws {
                let tag = "edgesim-test\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
                runner = NetworkNamespace("\(tag)-runner")
                nodes = NetworkNamespace("\(tag)-nodes")
                device = "es\(UInt16.random(in: 0...UInt16.max))"
                try NetworkNamespace.create([runner, nodes])
                do {
                    try IPCommand.batch(["link add \(device)a netns \(runner.name) type veth peer name \(device)b netns \(nodes.name)"])
                    try IPCommand.batch(
                        ["link set lo up", "addr add 198.19.254.1/30 dev \(device)a", "link set \(device)a up"], namespace: runner.name)
                    try IPCommand.batch(
                        ["link set lo up", "addr add 198.19.254.2/30 dev \(device)b", "link set \(device)b up"], namespace: nodes.name)
                    host = try ChildProcess(
                        [
                            IPCommand.executable, "netns", "exec", nodes.name, EdgesimProcess.executable, "node-host", "--listen",
                            "198.19.254.2:7100",
                        ]
                            + hostArguments, output: .pipe, errors: .pipe)
                } catch {
                    NetworkNamespace.delete([runner, nodes])
                    throw error
                }
                let said = self.said
                Task { [host] in for await line in LineStream.lines(of: host.errors!) { said.mutate { $0.append(line) } } }
                var output = LineStream.lines(of: host.output!).makeAsyncIterator()
                printed = await output.next() ?? ""
            }

            /// The command, run inside the runner's pod.
            func inRunnerPod(_ arguments: [String]) -> [String] {
                [IPCommand.executable, "netns", "exec", runner.name, EdgesimProcess.executable] + arguments
            }

            /// The node host's namespaces (`ip netns exec` execs it: its pid is edgesim's).
            var hostNamespaces: [String] { NetworkNamespace.list().filter { $0.hasPrefix("edgesim-\(host.pid)-") } }

            /// The node-host pod's end goes down: packets vanish both ways, nothing is closed.
            func darken() throws { try IPCommand.batch(["link set \(device)b down"], namespace: nodes.name) }

            func remove() {
                host.signal(SIGKILL)
                NetworkNamespace.delete([runner, nodes])
                try? FileManager.default.removeItem(atPath: runner.etcFolder)
            }
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
            let pods = try await PodPair(hostArguments: ["--scenario", scenario, "--mode", "netns", "--token-file", tokens.right])
            defer { pods.remove() }
            #expect(pods.printed == "listening on 198.19.254.2:7100")
            // The runner's pod finds the node host by name, as through a headless Service.
            try FileManager.default.createDirectory(atPath: pods.runner.etcFolder, withIntermediateDirectories: true)
            try "127.0.0.1 localhost\n198.19.254.2 nodes-0.edgesim-nodes\n".write(
                toFile: pods.runner.etcFolder + "/hosts", atomically: true, encoding: .utf8)

            let command = pods.inRunnerPod(
                ["run", scenario, "--mode", "netns", "--node-hosts", "nodes-0.edgesim-nodes:7100", "--node-host-token", tokens.right])
            let run = try EdgesimProcess.run(Array(command.dropFirst()), program: command[0])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            #expect(run.output.contains("scenario lab-echo (netns mode): PASSED"), "\(run.output)")
            #expect(run.output.contains("node hosts: 1 elsewhere (nodes-0.edgesim-nodes:7100)"), "\(run.output)")
            #expect(pods.said.value.contains("runner 198.19.254.1 connected: hosting 3 nodes"), "\(pods.said.value)")
            #expect(
                EdgesimProcess.waitUntil { pods.said.value.contains { $0.hasSuffix("went: 3 nodes stopped, their namespaces deleted") } })
            pods.host.signal(SIGTERM)
            #expect(await pods.host.exited() == 0)
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
            let pods = try await PodPair(hostArguments: ["--topology", topology, "--mode", "netns", "--token-file", tokens.right])
            defer { pods.remove() }
            #expect(pods.printed == "listening on 198.19.254.2:7100")

            let up = try ChildProcess(
                pods.inRunnerPod(
                    ["up", topology, "--mode", "netns", "--node-hosts", "198.19.254.2:7100", "--node-host-token", tokens.right]),
                output: .null, errors: .pipe)
            defer { up.signal(SIGKILL) }
            let upSaid = Locked<[String]>([])
            Task { for await line in LineStream.lines(of: up.errors!) { upSaid.mutate { $0.append(line) } } }
            #expect(EdgesimProcess.waitUntil(seconds: 30) { upSaid.value.contains("started 3/3 edge nodes") }, "\(upSaid.value)")
            #expect(pods.hostNamespaces.count == 3)

            try pods.darken()
            #expect(
                EdgesimProcess.waitUntil(seconds: 60) {
                    pods.said.value.contains { $0.hasSuffix("went: 3 nodes stopped, their namespaces deleted") }
                }, "\(pods.said.value)")
            #expect(pods.hostNamespaces.isEmpty)
            #expect(
                EdgesimProcess.waitUntil(seconds: 60) {
                    upSaid.value.filter { $0.contains("exited unexpectedly (status 255)") }.count == 3
                },
                "\(upSaid.value.suffix(20))")
            up.signal(SIGTERM)
            #expect(await up.exited() == 0)
            pods.host.signal(SIGTERM)
            #expect(await pods.host.exited() == 0)
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
