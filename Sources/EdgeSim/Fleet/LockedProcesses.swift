import Foundation
import Synchronization

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
