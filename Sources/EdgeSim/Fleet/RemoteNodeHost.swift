import EdgeNet
import Foundation
import Synchronization

/// What the runner holds of a node-host process: its child process, or its control connection.
protocol NodeHostLink: Sendable {
    var isRunning: Bool { get }
    /// Its process id when it is this machine's child.
    var processID: Int32? { get }
    var input: FileHandle? { get }
    func onExit(_ handler: @escaping @Sendable (Int32) -> Void)
    /// Tells it the runner is going (its input ends).
    func closeInput()
    func end(within grace: Duration) async
}

extension ChildProcess: NodeHostLink {
    var processID: Int32? { pid }
    func closeInput() { try? input?.close() }
}

/// The control connection to a node-host process that listens for its runner elsewhere. It
/// "exits" when the connection ends: status 0 when the runner ended it, 255 when it was lost.
final class RemoteNodeHost: NodeHostLink {
    static let lostStatus: Int32 = 255

    private let connection: ControlSocket.Connection
    private let handle: FileHandle
    private let state = Mutex<(ended: Bool, ending: Bool, handlers: [@Sendable (Int32) -> Void])>((false, false, []))

    init(_ connection: ControlSocket.Connection) {
        self.connection = connection
        handle = FileHandle(fileDescriptor: connection.descriptor, closeOnDealloc: true)
    }

    var isRunning: Bool { state.withLock { !$0.ended } }
    var processID: Int32? { nil }
    var input: FileHandle? { handle }

    func onExit(_ handler: @escaping @Sendable (Int32) -> Void) {
        let ended = state.withLock { state in
            if !state.ended { state.handlers.append(handler) }
            return state.ended
        }
        if ended { handler(Self.lostStatus) }
    }

    /// The lines the process writes, until the connection ends.
    func lines() -> AsyncStream<String> { LineStream.lines(of: handle) }

    /// Reports the exit, once the lines are all read (so a reply that came last is taken first).
    func finished() {
        let (handlers, asked) = state.withLock { state in
            defer {
                state.ended = true
                state.handlers = []
            }
            return (state.handlers, state.ending)
        }
        for handler in handlers { handler(asked ? 0 : Self.lostStatus) }
    }

    /// Ends the runner's side of the connection (its reading side stays open).
    func closeInput() {
        state.withLock { $0.ending = true }
        shutdown(connection.descriptor, Int32(SHUT_WR))
    }

    /// Closes the runner's side: the process stops its nodes and closes its side; after
    /// `grace` the connection is cut.
    func end(within grace: Duration) async {
        closeInput()
        let deadline = ContinuousClock.now + grace
        // The process's nodes drain first; the poll only bounds how long that may take.
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        shutdown(connection.descriptor, Int32(SHUT_RDWR))
    }
}
