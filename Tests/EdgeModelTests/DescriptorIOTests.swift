import EdgeModel
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let interruptions = Atomic<Int>(0)

/// Reads and writes through a signal handler installed without SA_RESTART, so the blocked call
/// returns EINTR (Foundation's non-throwing reads end the process there).
@Suite struct DescriptorIOTests {
    @Test func aReadInterruptedBySignalsStillGetsEverything() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptions.add(1, ordering: .relaxed) }
        action.sa_flags = 0
        var previous = sigaction()
        #expect(sigaction(SIGUSR2, &action, &previous) == 0)
        defer { sigaction(SIGUSR2, &previous, nil) }

        let pipe = Pipe()
        let reader = Locked(pthread_t?(nil))
        let thread = Locked(pid_t(0))
        let result = Locked<Result<Data, any Error>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let started = Thread {
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            sigaddset(&unblocked, SIGUSR2)
            pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
            reader.set(pthread_self())
            thread.set(
                pid_t(
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"))?.split(separator: "/").last.map(
                        String.init) ?? "") ?? 0)
            result.set(Result { try pipe.fileHandleForReading.readAll() })
            finished.signal()
        }
        started.start()
        let sent = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var signalled = 0
        for part in stride(from: 0, to: sent.count, by: 50_000) {
            // Wait until the reader sleeps in read(2), then interrupt it there; a reader that
            // gave up takes no more (the pipe would fill).
            guard waitForSleep(thread), result.value == nil else { break }
            let before = interruptions.load(ordering: .relaxed)
            if let target = reader.value { pthread_kill(target, SIGUSR2) }
            #expect(spin { interruptions.load(ordering: .relaxed) > before })
            signalled += 1
            try pipe.fileHandleForWriting.writeAll(sent[part..<min(part + 50_000, sent.count)])
        }
        try pipe.fileHandleForWriting.close()
        finished.wait()
        #expect(signalled == 4)
        #expect(try result.value?.get() == sent)
    }

    /// The thread's state in /proc is S (sleeping, here in read(2)), checked for at most 10 s.
    private func waitForSleep(_ thread: Locked<pid_t>) -> Bool {
        spin {
            let tid = thread.value
            guard tid != 0, let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return stat[close...].dropFirst(2).first == "S"
        }
    }

    private func spin(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition() { return true }
            usleep(1_000)
        }
        return false
    }
}

/// A value shared with another thread.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
}
