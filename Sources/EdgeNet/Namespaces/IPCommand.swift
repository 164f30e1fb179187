import EdgeModel
import Foundation

/// Runs iproute2's `ip`, feeding it a batch of commands on standard input.
public enum IPCommand {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `ip [-n namespace] -batch -` with one command a line; throws with ip's own message.
    public static func batch(_ lines: [String], namespace: String? = nil) throws {
        guard !lines.isEmpty else { return }
        var arguments = ["-force", "-batch", "-"]
        if let namespace { arguments = ["-n", namespace] + arguments }
        try run(arguments, input: lines.joined(separator: "\n") + "\n")
    }

    @discardableResult
    public static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let process = try ChildProcess([executable] + arguments, input: input == nil ? .null : .pipe, output: .pipe, errors: .pipe)
        if let input, let feed = process.input {
            try? feed.writeAll(Data(input.utf8))
            try? feed.close()
        }
        // Errors are read on another thread, so neither pipe can fill while the other is read.
        let complaint = Locked(Data())
        let errorsRead = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            complaint.set((try? process.errors?.readAll()) ?? Data())
            errorsRead.signal()
        }
        let printed = (try? process.output?.readAll()) ?? Data()
        errorsRead.wait()
        let status = Locked<Int32>(0)
        let exited = DispatchSemaphore(value: 0)
        process.onExit {
            status.set($0)
            exited.signal()
        }
        exited.wait()
        guard status.value == 0 else {
            let message = String(decoding: complaint.value, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "ip \(arguments.prefix(3).joined(separator: " ")): \(message)")
        }
        return String(decoding: printed, as: UTF8.self)
    }

    /// Runs many batches, `width` at a time, each on a thread of its own (`ip` blocks its
    /// caller, and Swift's own threads are as few as the cores); the first failure, if any,
    /// is thrown once all have run.
    public static func batches(_ jobs: [(namespace: String, lines: [String])], width: Int = 16) async throws {
        let jobs = jobs.filter { !$0.lines.isEmpty }
        guard !jobs.isEmpty else { return }
        let next = Locked(0)
        let failure = Locked<(any Error)?>(nil)
        let threads = min(width, jobs.count)
        let finished = Locked(0)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            for _ in 0..<threads {
                Thread {
                    while true {
                        let index = next.withLock { value -> Int in
                            defer { value += 1 }
                            return value
                        }
                        guard index < jobs.count else { break }
                        do {
                            try batch(jobs[index].lines, namespace: jobs[index].namespace)
                        } catch {
                            failure.withLock { if $0 == nil { $0 = error } }
                        }
                    }
                    let last = finished.withLock { value -> Bool in
                        value += 1
                        return value == threads
                    }
                    if last { continuation.resume() }
                }.start()
            }
        }
        if let error = failure.value { throw error }
    }

    public static var executable: String {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"
    }
}
