import EdgeModel
import Foundation
import Testing

/// Runs the edgesim executable for a test and collects what it prints.
enum EdgesimProcess {
    /// Debian's Postfix is here (CI installs it, so there a missing one fails rather than skips).
    static var canRunPostfix: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/postfix") || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// `EDGESIM_BIN` when set (scripts/test points it at a release build), else the executable
    /// built next to the test bundle.
    static var executable: String {
        ProcessInfo.processInfo.environment["EDGESIM_BIN"]
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("edgesim").path
    }

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var isRoot: Bool { geteuid() == 0 }

    /// Modes every scenario test runs in: loopback always, netns as root (CI runs as root).
    static var modes: [String] { isRoot ? ["loopback", "netns"] : ["loopback"] }

    struct Finished {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs to the end; the scenario's own timeout bounds how long that is.
    static func run(_ arguments: [String], program: String = executable, directory: URL? = nil) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        if let directory { process.currentDirectoryURL = directory }
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let collected = Locked<Data>(Data())
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            collected.set((try? errors.fileHandleForReading.readAll()) ?? Data())
            done.signal()
        }
        reader.start()
        let printed = try output.fileHandleForReading.readAll()
        process.waitUntilExit()
        done.wait()
        return Finished(
            status: process.terminationStatus, output: String(decoding: printed, as: UTF8.self),
            errors: String(decoding: collected.value, as: UTF8.self))
    }

    /// A scratch folder with a file in it (a scenario, or applications); `REPO` in the text
    /// becomes the repository's path.
    static func scenario(_ text: String) throws -> (folder: URL, path: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-scenario-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("scenario.yaml").path
        try text.replacingOccurrences(of: "REPO", with: repository.path).write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    /// Checks a condition another process makes true, every 10 ms, for at most `seconds`.
    static func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// The JSON report a run wrote.
    static func report(at path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }
}

/// A value shared between threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}

/// Runs of whole fleets, one at a time: two loopback runs would want the same addresses.
@Suite(.serialized) enum FleetRuns {}
