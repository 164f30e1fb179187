import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Logging
import Testing

@testable import EdgeSim

/// The runner's side of node hosts elsewhere: addresses read, nodes spread in topology order,
/// and the namespace of a node hosted elsewhere holds nothing of the node's (routes without a
/// source address of its own, its addresses through the tunnel).
@Suite struct NodePodsTests {
    /// Edge nodes e1...eN, a client and an origin linked to each, an echo application on `port`.
    static func plan(mode: FleetPlan.Mode, edges: Int, port: UInt16 = 7000) throws -> FleetPlan {
        try plan(mode: mode, names: (1...edges).map { "e\($0)" }, port: port)
    }

    /// Edge nodes with these names, a client and an origin linked to each, an echo application on `port`.
    static func plan(mode: FleetPlan.Mode, names: [String], port: UInt16) throws -> FleetPlan {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pods-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let topology = folder.appendingPathComponent("topology.yaml")
        try
            ([
                "name: spread", "edge_nodes: [\(names.map { "{name: \($0)}" }.joined(separator: ", "))]", "clients: [{name: c1}]",
                "origins: [{name: o1, kind: tcp-echo, ports: [\(port)]}]", "links:",
            ]
            + names.flatMap { ["  - {between: [c1, \($0)], rtt: 2ms}", "  - {between: [\($0), o1], rtt: 2ms}"] })
            .joined(separator: "\n").write(to: topology, atomically: true, encoding: .utf8)
        let apps = folder.appendingPathComponent("apps.yaml")
        try """
        - id: echo
          protocol: tcp/\(port)
          dns: {type: CNAME, name: echo.example}
          origin_direct: ["tcp://o1:\(port)"]
        """.write(to: apps, atomically: true, encoding: .utf8)
        let loader = ConfigLoader()
        let scenario = Scenario(
            topology: try loader.loadTopology(topology.path).value, topologyPath: topology.path,
            applications: try loader.loadApplications(apps.path, topologyHosts: true).value)
        return try FleetPlan(scenario: scenario, mode: mode)
    }

    @Test(arguments: [
        ("10.0.0.7:7100", "10.0.0.7", 7100), ("[2001:db8::7]:7100", "2001:db8::7", 7100),
        ("edgesim-nodes-0.edgesim-nodes.lab.svc:7100", "edgesim-nodes-0.edgesim-nodes.lab.svc", 7100),
    ])
    func addressesRead(_ text: String, host: String, port: Int) throws {
        let (readHost, readPort) = try #require(NodePods.parse(text))
        #expect(readHost == host && readPort == port)
    }

    @Test(arguments: ["10.0.0.7", "10.0.0.7:0", "10.0.0.7:70000", ":7100", "2001:db8::7:7100", "[2001:db8::7]7100", "host:port"])
    func whatIsNotHostAndPortIsRefused(_ text: String) {
        #expect(NodePods.parse(text) == nil)
    }

    @Test func portZeroIsAnyPortWhereAsked() throws {
        let (host, port) = try #require(NodePods.parse("127.0.0.1:0", anyPort: true))
        #expect(host == "127.0.0.1" && port == 0)
    }

    @Test(arguments: ["../ca.pem", "a/b.pem", ".hidden", "", "ca pem", "é.pem"])
    func certificateFilesWithNamesThatAreNotPlainAreRefused(_ name: String) {
        #expect(CertificateFiles.problem([name: "x"])?.contains("is not a plain file name") == true)
    }

    @Test func certificateFilesOverTheirLimitsAreRefusedAndPlainOnesWritten() throws {
        #expect(CertificateFiles.problem(["big.pem": String(repeating: "x", count: 64 * 1024 + 1)])?.contains("over 64 KiB") == true)
        #expect(CertificateFiles.problem(Dictionary(uniqueKeysWithValues: (0...1024).map { ("f\($0).pem", "x") })) != nil)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pods-files-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = ["ca.pem": "certificate\n", "app-key.pem": "key\n"]
        try CertificateFiles.write(files, into: folder)
        #expect(try CertificateFiles.read(folder) == files)
        let key = try FileManager.default.attributesOfItem(atPath: folder + "/app-key.pem")[.posixPermissions] as? Int
        #expect(key == 0o600)
        #expect(throws: CertificateFiles.Failure.self) { try CertificateFiles.write(["../escape.pem": "x"], into: folder) }
        #expect(!FileManager.default.fileExists(atPath: folder + "/../escape.pem"))
    }

    @Test func nodesAreSpreadInTopologyOrderAsEvenlyAsTheyGo() throws {
        let plan = try Self.plan(mode: .netns, edges: 5)
        let pods = try NodePods(addresses: ["a:1", "b:2"], token: nil, plan: plan)
        #expect(pods.pods.map(\.nodes) == [["e1", "e2", "e3"], ["e4", "e5"]])
        #expect(pods.remoteNodes == Set(plan.edgeNodes))
        #expect(throws: NodePods.Failure.self) { try NodePods(addresses: (1...6).map { "h\($0):1" }, token: nil, plan: plan) }
        #expect(throws: NodePods.Failure.self) { try NodePods(addresses: ["nothing"], token: nil, plan: plan) }
    }

    @Test func aNodeHostedElsewhereLeavesItsNamespaceHereOnlyForwarding() throws {
        let plan = try Self.plan(mode: .netns, edges: 2)
        let pods = try NodePods(addresses: ["a:1"], token: nil, plan: plan)
        let network = NamespaceNetwork(plan: plan, run: "1", pods: pods)
        let address = plan.hostAddresses["e1"]!
        let lines = NamespaceNetwork.forwardingLines(plan: plan, node: "e1")
        #expect(lines.contains("route add \(address)/32 dev pod0"))
        #expect(lines.contains("route add \(plan.applicationPoolIPv4) dev pod0"))
        #expect(!lines.contains { $0.contains("addr add") })
        // Its routes name no source: the address is not here but in the pod.
        let routes = network.routes(for: "e1").values
        #expect(!routes.isEmpty && routes.allSatisfy { !$0.contains(" src ") }, "\(routes)")
        // A client's routes still do.
        #expect(network.routes(for: "c1").values.contains { $0.contains(" src \(plan.hostAddresses["c1"]!)") })
    }
}

/// A node host listening for its runner (loopback mode, so no root): the runner's side connects,
/// says hello and drives the nodes as over pipes; a wrong token or another fleet is refused
/// with the reason, and when a runner goes the next one is served.
@Suite struct NodeHostListenerTests {
    func listener(_ plan: FleetPlan, token: String?) throws -> (NodeHostListener, Task<Void, any Error>) {
        let listener = try NodeHostListener(
            plan: plan, host: "127.0.0.1", port: 0, token: token, options: .init(), certificateFolder: nil, logger: Logger(label: "test"),
            say: { _ in })
        return (listener, Task { try await listener.run() })
    }

    func runnerSide(_ plan: FleetPlan, port: Int, token: String?, onLog: @escaping @Sendable (String, String) -> Void = { _, _ in }) throws
        -> (NodeHostProcess, [String: HostedNode])
    {
        let pods = try NodePods(addresses: ["127.0.0.1:\(port)"], token: token, plan: plan)
        let host = NodeHostProcess(
            name: "node-host-1", nodes: plan.edgeNodes, command: [], onEvent: { _ in }, onLog: onLog, onExit: { _, _, _ in },
            pod: (pods, pods.pods[0]))
        return (host, Dictionary(uniqueKeysWithValues: plan.edgeNodes.map { ($0, HostedNode(name: $0, host: host)) }))
    }

    @Test func aHostThatIsStoppedEndsItsSessionAsIfTheRunnerHadGone() async throws {
        let port = try NodeHostTests.freePort()
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 1, port: port)
        let (listener, running) = try listener(plan, token: nil)
        let (exits, exited) = AsyncStream.makeStream(of: Int32.self)
        let pods = try NodePods(addresses: ["127.0.0.1:\(listener.port)"], token: nil, plan: plan)
        let host = NodeHostProcess(
            name: "node-host-1", nodes: plan.edgeNodes, command: [], onEvent: { _ in }, onLog: { _, _ in },
            onExit: { _, status, _ in exited.yield(status) }, pod: (pods, pods.pods[0]))
        let node = HostedNode(name: "e1", host: host)
        try await node.start(timeout: .seconds(10))
        let address = "127.79.\(UInt8.random(in: 100...199)).1"
        try await node.startServing("echo", on: [IPAddress(address)!])
        #expect(NodeHostTests.accepts(address, port))

        running.cancel()
        try await running.value
        var statuses = exits.makeAsyncIterator()
        #expect(await statuses.next() == RemoteNodeHost.lostStatus)
        #expect(!host.isRunning("e1"))
        #expect(!NodeHostTests.accepts(address, port))
    }

    /// An application with edge TLS defined while the fleet runs: its certificate, issued into
    /// the runner's folder after the hello, reaches the host (sealed, as the hello's) before the
    /// definition does.
    @Test func certificatesIssuedWhileTheFleetRunsReachTheHostBeforeTheirApplication() async throws {
        let port = try NodeHostTests.freePort()
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 1, port: port)
        let (listener, running) = try listener(plan, token: "s3cret")
        defer { running.cancel() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pods-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let ca = try LocalCA(name: "test fleet CA")
        try ca.write(to: folder)
        let apps = folder.appendingPathComponent("secure.yaml")
        try
            "- id: secure\n  protocol: tcp/\(port)\n  dns: {type: CNAME, name: secure.example}\n  origin_direct: [\"tcp://o1:\(port)\"]\n  tls: flexible\n"
            .write(to: apps, atomically: true, encoding: .utf8)
        let secure = try plan.served(try #require(ConfigLoader().loadApplications(apps.path, topologyHosts: true).value.first))
        try FileManager.default.removeItem(at: apps)

        for (given, works) in [(folder.path, true), (nil, false)] {
            let pods = try NodePods(addresses: ["127.0.0.1:\(listener.port)"], token: "s3cret", plan: plan)
            let host = NodeHostProcess(
                name: "node-host-1", nodes: plan.edgeNodes, command: [], onEvent: { _ in }, onLog: { _, _ in }, onExit: { _, _, _ in },
                pod: (pods, pods.pods[0]), certificateFolder: given)
            let node = HostedNode(name: "e1", host: host)
            try await node.start(timeout: .seconds(10))
            try ca.issue(names: ["secure.example"]).write(to: folder, name: "secure")
            if works {
                try await node.define(secure)
            } else {
                // Without the runner's folder the host has no certificate for it, and says so.
                let refused = await #expect(throws: (any Error).self) { try await node.define(secure) }
                #expect("\(refused.map { "\($0)" } ?? "")".contains("secure"), "\(String(describing: refused))")
            }
            await host.stop(grace: .seconds(5))
            try FileManager.default.removeItem(at: folder.appendingPathComponent("secure.pem"))
            try FileManager.default.removeItem(at: folder.appendingPathComponent("secure-key.pem"))
        }
    }

    /// A stand-in host on a plain socket sees what a runner with a token says: a proof that
    /// answers its challenge, and the certificate files sealed; neither the token nor a key in
    /// clear. A listener that does not open with a challenge is named as not a node host, and one
    /// that takes the hello without answering the runner's own challenge is refused.
    @Test func theTokenAndTheKeysNeverCrossTheConnectionInClear() async throws {
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 1, port: try NodeHostTests.freePort())
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-pods-seal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let ca = try LocalCA(name: "test fleet CA")
        try ca.write(to: folder)
        try ca.issue(names: ["secure.example"]).write(to: folder, name: "secure")
        let files = try CertificateFiles.read(folder.path)
        let key = try #require(files["secure-key.pem"])
        #expect(key.contains("PRIVATE KEY"))

        let (listener, port) = try ControlSocket.listen(host: "127.0.0.1", port: 0)
        defer { close(listener) }
        for opening in ["challenge", "garbage", "pretender"] {
            let standIn = Task {
                try await ControlSocket.onThread { () -> (challenge: String, hello: String)? in
                    guard let connection = ControlSocket.accept(listener) else { return nil }
                    defer { close(connection.descriptor) }
                    let handle = FileHandle(fileDescriptor: connection.descriptor, closeOnDealloc: false)
                    let challenge = NodeHostHandshake.challenge()
                    guard opening != "garbage" else {
                        try? handle.write(contentsOf: Data("SSH-2.0-OpenSSH_9.2\n".utf8))
                        return (challenge, "")
                    }
                    try? handle.write(contentsOf: NodeControl.encode(NodeControl.Output(challenge: challenge)))
                    let hello = ControlSocket.readLine(connection.descriptor, timeout: .seconds(10)).map {
                        String(decoding: $0, as: UTF8.self)
                    }
                    let id = hello.flatMap { NodeControl.request(from: Array($0.utf8)) }?.id ?? -1
                    // A pretender takes the hello as a node host would, but cannot answer the runner's challenge.
                    let error = opening == "pretender" ? nil : "seen enough"
                    try? handle.write(contentsOf: NodeControl.encode(NodeControl.Output(reply: id, error: error)))
                    return hello.map { (challenge, $0) }
                }
            }
            let pods = try NodePods(addresses: ["127.0.0.1:\(port)"], token: "s3cret-token", plan: plan)
            let host = NodeHostProcess(
                name: "node-host-1", nodes: plan.edgeNodes, command: [], onEvent: { _ in }, onLog: { _, _ in }, onExit: { _, _, _ in },
                pod: (pods, pods.pods[0]), certificateFolder: folder.path)
            let refused = await #expect(throws: (any Error).self) {
                try await HostedNode(name: "e1", host: host).start(timeout: .seconds(10))
            }
            let seen = try #require(try await standIn.value)
            if opening == "garbage" {
                #expect("\(refused.map { "\($0)" } ?? "")".contains("did not open with a challenge"), "\(String(describing: refused))")
                continue
            }
            if opening == "pretender" {
                #expect("\(refused.map { "\($0)" } ?? "")".contains("did not prove it holds the token"), "\(String(describing: refused))")
                #expect(!host.isRunning("e1"))
                continue
            }
            #expect("\(refused.map { "\($0)" } ?? "")".contains("seen enough"), "\(String(describing: refused))")
            #expect(!seen.hello.contains("s3cret") && !seen.hello.contains("PRIVATE KEY") && !seen.hello.contains("BEGIN"))
            let hello = try #require(NodeControl.request(from: Array(seen.hello.utf8)))
            #expect(hello.op == .hello && hello.files == nil)
            #expect(NodeHostHandshake.verify(hello.proof ?? "", token: "s3cret-token", challenge: seen.challenge, fleet: plan.fingerprint))
            #expect(try NodeHostHandshake.open(hello.sealedFiles ?? "", token: "s3cret-token", challenge: seen.challenge) == files)
        }
    }

    /// Sealed files reach only a host that has the token; one without is refused with the reason.
    @Test func sealedFilesToAHostWithoutATokenAreRefused() throws {
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 1, port: try NodeHostTests.freePort())
        let (open, openRunning) = try listener(plan, token: nil)
        let (guarded, guardedRunning) = try listener(plan, token: "s3cret")
        defer {
            openRunning.cancel()
            guardedRunning.cancel()
        }
        let challenge = NodeHostHandshake.challenge()
        var request = NodeControl.Request(id: 1, op: .files, app: "", addresses: [])
        request.sealedFiles = try NodeHostHandshake.seal(["ca.pem": "x"], token: "s3cret", challenge: challenge)
        #expect(try guarded.files(of: request, challenge: challenge).get() == ["ca.pem": "x"])
        #expect(throws: CertificateFiles.Failure.self) { try guarded.files(of: request, challenge: NodeHostHandshake.challenge()).get() }
        switch open.files(of: request, challenge: challenge) {
        case .success(let files): Issue.record("a host without a token opened sealed files: \(String(describing: files))")
        case .failure(let failure): #expect(failure.description.contains("this host was given none"), "\(failure)")
        }
    }

    @Test func aRunnerStartedBeforeItsHostWaitsForIt() async throws {
        let port = try NodeHostTests.freePort()
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 1, port: port)
        let hostPort = try NodeHostTests.freePort()
        let (tried, triedOnce) = AsyncStream.makeStream(of: String.self)
        let (host, nodes) = try runnerSide(plan, port: Int(hostPort), token: nil, onLog: { _, line in triedOnce.yield(line) })
        let starting = Task { try await nodes["e1"]!.start(timeout: .seconds(20)) }
        var said = tried.makeAsyncIterator()
        let first = await said.next()
        #expect(first?.contains("127.0.0.1:\(hostPort) not there yet") == true, "\(String(describing: first))")
        let listener = try NodeHostListener(
            plan: plan, host: "127.0.0.1", port: Int(hostPort), token: nil, options: .init(), certificateFolder: nil,
            logger: Logger(label: "test"), say: { _ in })
        let running = Task { try await listener.run() }
        defer { running.cancel() }
        try await starting.value
        #expect(host.isRunning("e1"))
        await host.stop(grace: .seconds(5))
    }

    @Test func aRunnerDrivesTheNodesOverTCPAndTheNextOneIsServedAfterIt() async throws {
        let port = try NodeHostTests.freePort()
        let plan = try NodePodsTests.plan(mode: .loopback, edges: 2, port: port)
        let (listener, running) = try listener(plan, token: "s3cret")
        defer { running.cancel() }

        let (wrong, wrongNodes) = try runnerSide(plan, port: listener.port, token: "guess")
        let refused = await #expect(throws: (any Error).self) { try await wrongNodes["e1"]!.start(timeout: .seconds(10)) }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("refused the runner: wrong token"), "\(String(describing: refused))")
        #expect(!wrong.isRunning("e1"))

        let other = try NodePodsTests.plan(mode: .loopback, edges: 3, port: port)
        let (_, otherNodes) = try runnerSide(other, port: listener.port, token: "s3cret")
        let mismatch = await #expect(throws: (any Error).self) { try await otherNodes["e1"]!.start(timeout: .seconds(10)) }
        #expect("\(mismatch.map { "\($0)" } ?? "")".contains("not this host's"), "\(String(describing: mismatch))")

        for round in 1...2 {
            let (host, nodes) = try runnerSide(plan, port: listener.port, token: "s3cret")
            try await nodes["e1"]!.start(timeout: .seconds(10))
            try await nodes["e2"]!.start(timeout: .seconds(10))
            #expect(host.isRunning("e1") && host.isRunning("e2"))
            #expect(host.pid == nil)
            // One runner at a time: another is told who is served.
            let (_, second) = try runnerSide(plan, port: listener.port, token: "s3cret")
            let busy = await #expect(throws: (any Error).self) { try await second["e1"]!.start(timeout: .seconds(10)) }
            #expect("\(busy.map { "\($0)" } ?? "")".contains("busy: serving the runner at 127.0.0.1"), "\(String(describing: busy))")
            let address = "127.78.\(UInt8.random(in: 100...199)).\(round)"
            try await nodes["e2"]!.startServing("echo", on: [IPAddress(address)!])
            #expect(NodeHostTests.accepts(address, port), "round \(round)")
            await nodes["e1"]!.kill()
            #expect(!host.isRunning("e1") && host.isRunning("e2"))
            // The runner goes: the host stops its nodes, and the port is closed.
            await host.stop(grace: .seconds(5))
            #expect(!host.isRunning("e2"))
            #expect(!NodeHostTests.accepts(address, port), "round \(round)")
        }
    }
}
