import EdgeNet
import Foundation
import Synchronization

/// Child processes to end later, from any thread.
final class LockedProcesses: Sendable {
    private let list = Mutex<[ChildProcess]>([])

    func add(_ process: ChildProcess) { list.withLock { $0.append(process) } }

    func takeAll() -> [ChildProcess] {
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
