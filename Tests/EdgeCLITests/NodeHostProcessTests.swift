import EdgeModel
import EdgeSim
import Foundation
import Testing

/// The runner's side of a real `edgesim node-host` process: a crash of the process is every
/// node's exit, unexpected, and the next start brings up a new process for the node asked for.
@Suite struct NodeHostProcessTests {
    struct Exit: Sendable, Equatable {
        var node: String
        var status: Int32
        var expected: Bool
    }

    /// The next exit reported, or nil when none comes within `limit`.
    func next(_ exits: AsyncStream<Exit>.Iterator, within limit: Duration = .seconds(15)) async -> (Exit?, AsyncStream<Exit>.Iterator) {
        var iterator = exits
        let exit = await withTaskGroup(of: Exit?.self) { group in
            nonisolated(unsafe) var inner = iterator
            group.addTask { await inner.next() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return (exit, iterator)
    }

    @Test func aCrashedHostIsEveryNodesUnexpectedExitAndTheNextStartBringsANewProcess() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: NodeProcessTests.executable), "build edgesim first")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-nodehost-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let topology = folder.appendingPathComponent("topology.yaml")
        try """
        name: pair
        edge_nodes: [{name: ams}, {name: fra}]
        clients: [{name: c1}]
        origins: [{name: o1, kind: tcp-echo, ports: [7000]}]
        links:
          - {between: [c1, ams], rtt: 2ms}
          - {between: [c1, fra], rtt: 4ms}
          - {between: [ams, o1], rtt: 2ms}
          - {between: [fra, o1], rtt: 2ms}
        """.write(to: topology, atomically: true, encoding: .utf8)
        let (stream, continuation) = AsyncStream.makeStream(of: Exit.self)
        let host = NodeHostProcess(
            name: "node-host-1", nodes: ["ams", "fra"],
            command: [NodeProcessTests.executable, "node-host", "--topology", topology.path, "--mode", "loopback", "--nodes", "ams,fra"],
            onEvent: { _ in }, onLog: { _, _ in }, onExit: { continuation.yield(Exit(node: $0, status: $1, expected: $2)) })
        let ams = HostedNode(name: "ams", host: host)
        let fra = HostedNode(name: "fra", host: host)
        defer { if let pid = host.pid { kill(pid, SIGKILL) } }
        try await ams.start()
        try await fra.start()
        #expect(ams.isRunning && fra.isRunning)
        let first = try #require(host.pid)
        #expect(ams.pid == first && fra.pid == first)

        kill(first, SIGKILL)
        var exits = stream.makeAsyncIterator()
        var seen: [Exit] = []
        for _ in 0..<2 {
            let (exit, rest) = await next(exits)
            exits = rest
            if let exit { seen.append(exit) }
        }
        #expect(
            seen.sorted { $0.node < $1.node }
                == [Exit(node: "ams", status: SIGKILL, expected: false), Exit(node: "fra", status: SIGKILL, expected: false)])
        #expect(!ams.isRunning && !fra.isRunning)

        // Started again: a new process, holding only the node asked for.
        try await ams.start()
        let second = try #require(host.pid)
        #expect(second != first)
        #expect(ams.isRunning && !fra.isRunning)

        // Killed alone, the node's exit is the one expected; the process goes on.
        await ams.kill()
        let (killed, _) = await next(exits)
        #expect(killed == Exit(node: "ams", status: SIGKILL, expected: true))
        #expect(host.pid == second)
        await host.stop()
        #expect(host.pid == nil)
    }
}
