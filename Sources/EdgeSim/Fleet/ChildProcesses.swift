import Foundation
import Synchronization

extension Process {
    /// Waits up to `grace` for the process to exit by itself (checking every 20 ms), then
    /// SIGKILLs it.
    func end(within grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if isRunning { kill(processIdentifier, SIGKILL) }
    }
}

/// Child processes to end later, from any thread.
final class LockedProcesses: Sendable {
    private let list = Mutex<[Process]>([])

    func add(_ process: Process) { list.withLock { $0.append(process) } }

    func takeAll() -> [Process] {
        list.withLock { list in
            defer { list = [] }
            return list
        }
    }
}

/// The last lines each node process wrote to standard error.
final class LastLines: Sendable {
    private let lines = Mutex<[String: [String]]>([:])

    func withLock<Result: Sendable>(_ body: (inout [String: [String]]) -> Result) -> Result {
        lines.withLock { body(&$0) }
    }
}
