import EdgeModel
import Foundation
import Synchronization

/// A program from the system run for a test, its output collected line by line, killed at the
/// end. It runs under a small shell holding a pipe from the test process: when the pipe closes
/// (stopped, or the test process gone however it went) the shell ends it, so none outlives a test.
final class ExternalProcess: Sendable {
    private let process: Process
    private let input = Pipe()
    /// SIGKILL, since Foundation's Process passes on the spawning thread's signal mask, and a
    /// test thread may have SIGTERM blocked: a program that does not unblock it (openssl) would
    /// never end.
    static let guardian = "\"$@\" & child=$!; cat > /dev/null; kill -KILL $child 2>/dev/null; wait"
    private let lines = Mutex<[String]>([])
    private let partial = Mutex<String>("")

    /// The path of `name` on PATH, or nil.
    static func find(_ name: String) -> String? {
        // Strings, not Substrings: with the array literal added, Swift took each folder for an array of characters.
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin:/bin:/sbin").split(separator: ":").map(
            String.init)
        for folder in folders + ["/usr/sbin", "/sbin"] {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a program to its end with no input; its status and everything it printed.
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let printed = try pipe.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: printed, as: UTF8.self))
    }

    /// `run` on a thread of its own: waiting for a client of an in-process server must not hold
    /// one of the few threads Swift's tasks run on, which the server may need to answer it.
    static func runAside(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try run(path, arguments) }) }.start()
        }
    }

    /// True when a test may skip for want of `tool`: outside CI only, since CI installs everything.
    static func mayBeMissing(_ tool: String) -> Bool {
        ProcessInfo.processInfo.environment["CI"] != "true"
    }

    init(_ executable: String, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.guardian, "sh", executable] + arguments
        process.standardInput = input
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read on a thread of its own until end of file (no dispatch source on the descriptor:
        // one left registered as the pipe closed crashed libdispatch's event loop).
        let reading = pipe.fileHandleForReading
        Thread { [weak self] in
            while true {
                let data = reading.readSomeOrEnd()
                guard let self, !data.isEmpty else { break }
                self.append(data)
            }
        }.start()
    }

    private func append(_ data: Data) {
        partial.withLock { partial in
            partial += String(decoding: data, as: UTF8.self)
            let complete = partial.split(separator: "\n", omittingEmptySubsequences: false)
            partial = String(complete.last ?? "")
            lines.withLock { $0 += complete.dropLast().map(String.init) }
        }
    }

    deinit {
        stop()
    }

    var output: [String] { lines.withLock { $0 } }

    var isRunning: Bool { process.isRunning }

    /// Waits (checking every 20 ms, up to `timeout`) for an output line containing `text`.
    func waitForLine(containing text: String, timeout: Duration = .seconds(10)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.first(where: { $0.contains(text) }) { return line }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }
}
