import EdgeModel
import EdgeProxy
import EdgeSim
import Foundation
import Logging
import Synchronization
import Testing

/// Several edge nodes in one process, driven over their control channel: each starts, serves,
/// freezes and dies alone.
@Suite struct NodeHostTests {
    /// The runner's end of a node host's control channel, over real pipes.
    final class Driver: Sendable {
        let toHost = Pipe()
        let fromHost = Pipe()
        private let state = Mutex(State())

        struct State {
            var nextID = 1
            var replies: [Int: NodeControl.Output] = [:]
            var waiters: [Int: CheckedContinuation<NodeControl.Output?, Never>] = [:]
        }

        init() {
            Task { [self] in
                for await line in LineStream.lines(of: fromHost.fileHandleForReading) {
                    guard let output = NodeControl.output(from: Array(line.utf8)), let id = output.reply else { continue }
                    let waiter = state.withLock { state -> CheckedContinuation<NodeControl.Output?, Never>? in
                        if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                        state.replies[id] = output
                        return nil
                    }
                    waiter?.resume(returning: output)
                }
            }
        }

        func send(_ op: NodeControl.Request.Operation, _ node: String, app: String = "", addresses: [IPAddress] = []) throws -> Int {
            let id = state.withLock { state in
                defer { state.nextID += 1 }
                return state.nextID
            }
            try toHost.fileHandleForWriting.writeAll(
                NodeControl.encode(NodeControl.Request(id: id, op: op, app: app, addresses: addresses, node: node)))
            return id
        }

        /// The reply to request `id`, or nil when none came within `limit`.
        func reply(_ id: Int, within limit: Duration = .seconds(10)) async -> NodeControl.Output? {
            let timer = Task { [self] in
                try await Task.sleep(for: limit)
                state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
            }
            defer { timer.cancel() }
            return await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> NodeControl.Output? in
                    if let reply = state.replies.removeValue(forKey: id) { return reply }
                    state.waiters[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }

        /// Sends a request and returns its reply's error (nil: it was done).
        func ask(_ op: NodeControl.Request.Operation, _ node: String, app: String = "", addresses: [IPAddress] = []) async throws
            -> String??
        {
            let id = try send(op, node, app: app, addresses: addresses)
            return await reply(id).map(\.error)
        }
    }

    static func plan(port: UInt16) throws -> FleetPlan {
        try NodePodsTests.plan(mode: .loopback, names: ["ams", "fra"], port: port)
    }

    /// True when a TCP connection to address:port is accepted.
    static func accepts(_ address: String, _ port: UInt16) -> Bool {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        target.sin_addr.s_addr = inet_addr(address)
        return withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A TCP socket bound to address:port, listening (`listen`) or connected; every wait on it
    /// gives up after 10 s. -1 when that fails.
    static func socket(_ address: String, _ port: UInt16, listen: Bool) -> Int32 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        target.sin_addr.s_addr = inet_addr(address)
        let done = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                let length = socklen_t(MemoryLayout<sockaddr_in>.size)
                return listen
                    ? bind(socket, pointer, length) == 0 && Foundation.listen(socket, 8) == 0 : connect(socket, pointer, length) == 0
            }
        }
        guard done else {
            close(socket)
            return -1
        }
        return socket
    }

    /// True when the connection ends (the other side closed or reset it) before 10 s pass.
    static func ends(_ socket: Int32) -> Bool {
        var byte: UInt8 = 0
        while true {
            let read = recv(socket, &byte, 1, 0)
            if read == 0 { return true }
            if read < 0 { return errno == ECONNRESET }
        }
    }

    static func freePort() throws -> UInt16 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        return UInt16(bigEndian: address.sin_port)
    }

    @Test func nodesStartServeFreezeAndDieAloneThenAllStopWhenTheInputCloses() async throws {
        let port = try Self.freePort()
        let plan = try Self.plan(port: port)
        let host = NodeHost(
            blueprints: plan.edgeNodes.map { NodeBlueprint(plan: plan, node: $0, certificateFolder: nil) }, options: .init(),
            events: EventLog(), logger: Logger(label: "test"))
        let driver = Driver()
        let service = NodeHostControlService(
            host: host, drain: .milliseconds(100), input: driver.toHost.fileHandleForReading, output: driver.fromHost.fileHandleForWriting)
        let running = Task { try await service.run() }
        let third = UInt8.random(in: 100...199)
        let amsAddress = "127.77.\(third).1"
        let fraAddress = "127.77.\(third).2"

        #expect(try await driver.ask(.start, "ams") == .some(nil))
        #expect(try await driver.ask(.start, "fra") == .some(nil))
        let again = try await driver.ask(.start, "ams")
        #expect(again??.contains("running already") == true, "\(String(describing: again))")
        #expect(try await driver.ask(.start, "nowhere")??.contains("no node nowhere here") == true)
        #expect(try await driver.ask(.serve, "ams", app: "echo", addresses: [IPAddress(amsAddress)!]) == .some(nil))
        #expect(try await driver.ask(.serve, "fra", app: "echo", addresses: [IPAddress(fraAddress)!]) == .some(nil))
        #expect(Self.accepts(amsAddress, port))
        #expect(Self.accepts(fraAddress, port))
        #expect(host.running == ["ams", "fra"])

        // A frozen node answers nothing, its neighbour goes on, and the ping waiting is answered on thaw.
        #expect(try await driver.ask(.freeze, "ams") == .some(nil))
        let waiting = try driver.send(.ping, "ams")
        #expect(await driver.reply(waiting, within: .seconds(1)) == nil)
        #expect(try await driver.ask(.ping, "fra") == .some(nil))
        #expect(try await driver.ask(.thaw, "ams") == .some(nil))
        #expect(await driver.reply(waiting)?.ok == true)

        // A connection relayed through ams to its origin (no fabric here: the origin listens on
        // the address nodes connect to), open when ams is killed.
        let origin = Self.socket(try #require(plan.hostAddresses["o1"]).description, port, listen: true)
        try #require(origin >= 0)
        defer { close(origin) }
        let client = Self.socket(amsAddress, port, listen: false)
        try #require(client >= 0)
        defer { close(client) }
        var byte: UInt8 = 7
        #expect(send(client, &byte, 1, 0) == 1)
        // The node's retries for the probes above may reach the origin first, and end at once.
        var originSide: Int32 = -1
        for _ in 0..<5 where originSide < 0 {
            let accepted = accept(origin, nil, nil)
            guard accepted >= 0 else { break }
            byte = 0
            if recv(accepted, &byte, 1, 0) == 1, byte == 7 { originSide = accepted } else { close(accepted) }
        }
        try #require(originSide >= 0, "no connection through the node carried the client's byte to the origin")
        defer { close(originSide) }

        // Killed: its listener is gone at once, the other node's stays, and both sides of the
        // connection it relayed end.
        #expect(try await driver.ask(.kill, "ams") == .some(nil))
        #expect(Self.ends(client))
        #expect(Self.ends(originSide))
        #expect(!Self.accepts(amsAddress, port))
        #expect(Self.accepts(fraAddress, port))
        #expect(try await driver.ask(.ping, "ams")??.contains("not running") == true)
        #expect(host.running == ["fra"])

        // Started again, it serves again.
        let restarted = try await driver.ask(.start, "ams")
        #expect(restarted == .some(nil), "\(String(describing: restarted))")
        #expect(try await driver.ask(.serve, "ams", app: "echo", addresses: [IPAddress(amsAddress)!]) == .some(nil))
        #expect(Self.accepts(amsAddress, port))

        // The runner goes away: every node stops and the service returns.
        try driver.toHost.fileHandleForWriting.close()
        try await running.value
        #expect(host.running.isEmpty)
        #expect(!Self.accepts(amsAddress, port))
        #expect(!Self.accepts(fraAddress, port))
        await host.shutdown(grace: .zero)
    }
}
