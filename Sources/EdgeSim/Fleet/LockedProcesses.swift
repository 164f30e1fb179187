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

/// A value shared by reference between closures and threads.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) { mutex = Mutex(value) }

    public var value: Value { mutex.withLock { $0 } }

    public func set(_ value: Value) { mutex.withLock { $0 = value } }
}
