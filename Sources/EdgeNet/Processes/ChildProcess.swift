import CEdgeNet
import Foundation
import Synchronization

/// A program the fleet starts: posix_spawn in a process group of its own, with every
/// descriptor but its standard input, output and error closed in the child. Foundation's
/// `Process` is not used: on Linux it lists /proc/self/fd to close descriptors and, with the
/// hundreds a large fleet's TUN links hold, read past a buffer and crashed the runner.
public final class ChildProcess: Sendable {
    public enum Stream: Sendable {
        /// A pipe to or from the runner.
        case pipe
        /// /dev/null.
        case null
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: Int32
    /// The write end of its standard input, when that is a pipe.
    public let input: FileHandle?
    /// The read ends of its standard output and error, when those are pipes.
    public let output: FileHandle?
    public let errors: FileHandle?
    private let state = Locked<ExitState>(ExitState())

    private struct ExitState: Sendable {
        var status: Int32?
        var handlers: [@Sendable (Int32) -> Void] = []
    }

    public init(_ command: [String], directory: String? = nil, input: Stream = .null, output: Stream = .null, errors: Stream = .null)
        throws
    {
        guard let program = command.first else { throw Failure(description: "no command") }
        var opened: [Int32] = []
        func pipeEnds() throws -> (read: Int32, write: Int32) {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))") }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            opened += ends
            return (ends[0], ends[1])
        }
        do {
            let stdin = input == .pipe ? try pipeEnds() : nil
            let stdout = output == .pipe ? try pipeEnds() : nil
            let stderr = errors == .pipe ? try pipeEnds() : nil
            var pid: pid_t = 0
            let arguments = command.map { strdup($0) } + [nil]
            let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for pointer in arguments + environment { free(pointer) }
            }
            let result = cedgenet_spawn(
                program, arguments, environment, directory, stdin?.read ?? -1, stdout?.write ?? -1, stderr?.write ?? -1, &pid)
            guard result == 0 else { throw Failure(description: "cannot start \(program): \(String(cString: strerror(result)))") }
            self.pid = pid
            // The child's ends are the child's now.
            for end in [stdin?.read, stdout?.write, stderr?.write].compactMap({ $0 }) { close(end) }
            self.input = stdin.map { FileHandle(fileDescriptor: $0.write, closeOnDealloc: true) }
            self.output = stdout.map { FileHandle(fileDescriptor: $0.read, closeOnDealloc: true) }
            self.errors = stderr.map { FileHandle(fileDescriptor: $0.read, closeOnDealloc: true) }
        } catch {
            for descriptor in opened { close(descriptor) }
            throw error
        }
        let pid = self.pid
        let state = self.state
        Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            // As Foundation reports it: the exit status, or the signal that ended it.
            let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : status & 0x7F
            let handlers = state.withLock { state in
                state.status = code
                defer { state.handlers = [] }
                return state.handlers
            }
            for handler in handlers { handler(code) }
        }.start()
    }

    public var isRunning: Bool { state.withLock { $0.status == nil } }
    /// The exit status (or the signal that ended it); nil while it runs.
    public var status: Int32? { state.withLock { $0.status } }

    /// Calls `handler` with the status once it exits (at once if it has).
    public func onExit(_ handler: @escaping @Sendable (Int32) -> Void) {
        let done: Int32? = state.withLock { state in
            if state.status == nil { state.handlers.append(handler) }
            return state.status
        }
        if let done { handler(done) }
    }

    /// Waits for it to exit.
    public func exited() async -> Int32 {
        await withCheckedContinuation { continuation in onExit { continuation.resume(returning: $0) } }
    }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// Waits up to `grace` for it to exit by itself, then SIGKILLs it.
    public func end(within grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        signal(SIGKILL)
    }
}
