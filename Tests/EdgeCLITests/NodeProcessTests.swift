import EdgeModel
import Foundation
import Testing

/// `edgesim node` as a real process: it serves, reports, and stops cleanly on SIGTERM.
@Suite struct NodeProcessTests {
    /// The edgesim executable built next to the test bundle.
    static let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("edgesim")
        .path

    func run(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, pipe)
    }

    /// Reads standard error until a line contains `text` (or the process ends).
    func readUntil(_ pipe: Pipe, contains text: String) -> String {
        var seen = ""
        while !seen.contains(text) {
            let data = pipe.fileHandleForReading.readSomeOrEnd()
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
        }
        return seen
    }

    @Test func servesUntilSIGTERMThenPrintsItsSummaryAndExitsZero() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build edgesim first: \(Self.executable)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-node-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let apps = folder.appendingPathComponent("apps.yaml")
        try """
        - protocol: tcp/7000-7002
          dns: {type: CNAME, name: range.example}
          origin_direct: ["tcp://127.0.0.1:9000-9002"]
        - protocol: udp/5353
          dns: {type: CNAME, name: udp.example}
          origin_direct: ["udp://127.0.0.1:5353"]
        """.write(to: apps, atomically: true, encoding: .utf8)
        let address = "127.\(Int.random(in: 100...199)).\(Int.random(in: 0...255)).\(Int.random(in: 1...254))"
        let (process, pipe) = try run(["node", "--apps", apps.path, "--listen", address, "--name", "ams", "--threads", "3"])
        let startup = readUntil(pipe, contains: "ready")
        #expect(startup.contains("node ams: serving"), "\(startup)")
        // --threads: the node's own event loops, as many as asked.
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task")) ?? []
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\($0)/comm", encoding: .utf8) }
        #expect(names.filter { $0.hasPrefix("NIO-ELT-") }.count == 3, "\(names)")
        // The TCP range is plain: relayed by threads of the node's own, one per event loop.
        #expect(names.filter { $0.hasPrefix("edgesim-relay-") }.count == 3, "\(names)")
        #expect(startup.contains("tcp \(address):7000-7002"), "\(startup)")
        #expect(startup.contains("udp \(address):5353"), "\(startup)")
        process.terminate()
        process.waitUntilExit()
        let rest = String(decoding: try pipe.fileHandleForReading.readAll(), as: UTF8.self)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        #expect(rest.contains("node ams: no traffic"), "\(rest)")
    }

    @Test func threadsOutOfRangeAreRefused() throws {
        let (process, pipe) = try run(["node", "--apps", "unused.yaml", "--threads", "0"])
        process.waitUntilExit()
        let errors = String(decoding: try pipe.fileHandleForReading.readAll(), as: UTF8.self)
        #expect(process.terminationStatus != 0)
        #expect(errors.contains("--threads must be between 1 and 256"), "\(errors)")
    }

    @Test func aBadAppsFileIsRefusedWithItsLineAndExitTwo() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable), "build edgesim first: \(Self.executable)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-bad-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try "- protocol: tcp/22\n  dns: {type: CNAME, name: a.example}\n  origin_direct: ['tcp://2001:db8::1:22']\n".write(
            to: file, atomically: true, encoding: .utf8)
        let (process, pipe) = try run(["node", "--apps", file.path])
        process.waitUntilExit()
        let output = String(decoding: try pipe.fileHandleForReading.readAll(), as: UTF8.self)
        #expect(process.terminationStatus == 2)
        #expect(output.contains(":3:19: [0].origin_direct[0]: IPv6 origin '2001:db8::1' must be in brackets"), "\(output)")
    }
}

@Suite struct OriginProcessTests {
    @Test func builtInOriginPrintsWhereItListensAndStopsOnSIGTERM() throws {
        try #require(FileManager.default.isExecutableFile(atPath: NodeProcessTests.executable))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: NodeProcessTests.executable)
        let address = "127.\(Int.random(in: 100...199)).\(Int.random(in: 0...255)).\(Int.random(in: 1...254))"
        process.arguments = ["origin", "udp-echo", "--listen", "\(address):0", "--proxy-protocol", "simple"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = NodeProcessTests().readUntil(pipe, contains: "\n")
        #expect(line.hasPrefix("origin udp-echo: listening on \(address):"), "\(line)")
        let port = Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect((1...65535).contains(port), "a real port was bound: \(line)")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}

@Suite struct DNSProcessTests {
    @Test func answersRotatesAndStopsOnSIGTERM() throws {
        try #require(FileManager.default.isExecutableFile(atPath: NodeProcessTests.executable))
        let apps = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-dns-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: apps) }
        try """
        - {id: mail, protocol: tcp/25, dns: {type: CNAME, name: mail.example.net}, origin_direct: ["tcp://198.18.0.1:25"]}
        - {id: game, protocol: udp/3000, dns: {type: ADDRESS, name: game.example.net}, origin_direct: ["udp://198.18.0.2:3000"], edge_ips: {type: static, ips: [198.19.9.9]}}
        """.write(to: apps, atomically: true, encoding: .utf8)
        let address = "127.\(Int.random(in: 100...199)).\(Int.random(in: 0...255)).\(Int.random(in: 1...254))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: NodeProcessTests.executable)
        process.arguments = ["dns", "--apps", apps.path, "--listen", "\(address):0", "--rotate-every", "1s"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = NodeProcessTests().readUntil(pipe, contains: "rotated mail")
        process.terminate()
        process.waitUntilExit()
        #expect(output.contains("dns: answering on udp and tcp \(address):"), "\(output)")
        #expect(output.contains("mail.example.net (mail) via mail.apps.edgesim.test.: 198.19.0.1 2001:db8:a::1"), "\(output)")
        #expect(output.contains("game.example.net (game): 198.19.9.9"), "\(output)")
        #expect(output.contains("rotated mail: 198.19.0.1 2001:db8:a::1 -> 198.19.0.2 2001:db8:a::2"), "\(output)")
        #expect(!output.contains("rotated game"), "static addresses do not rotate")
        #expect(process.terminationStatus == 0)
    }
}
