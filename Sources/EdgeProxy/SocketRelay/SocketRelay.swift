import CEdgeNet
import EdgeModel
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A node's relay threads for plain TCP applications (see `SocketRelayLoop`), one per event
/// loop of the node's group, each started from that loop's thread so it shares its network
/// namespace. They end once the node has stopped and its last connection has closed.
final class SocketRelay: Sendable {
    /// One listening socket on one loop.
    struct Listener: Sendable {
        var loop: Int
        var id: Int
    }

    private let loops: [SocketRelayLoop]

    /// Whether this relay can serve `service`: TCP, no TLS, no HTTP, origins given as addresses,
    /// and no smart routing.
    static func serves(_ service: ApplicationService) -> Bool {
        guard service.app.edge.transport == .tcp, service.app.tls == .off, service.app.trafficType == .direct, service.smartRouting == nil
        else { return false }
        if case .direct = service.app.origin { return true }
        return false
    }

    init(group: any EventLoopGroup) async throws {
        var loops: [SocketRelayLoop] = []
        for (index, loop) in group.makeIterator().enumerated() {
            let relay = try SocketRelayLoop(name: "edgesim-relay-\(index)")
            try await loop.submit { try Self.startThread(relay) }.get()
            loops.append(relay)
        }
        self.loops = loops
    }

    private static func startThread(_ loop: SocketRelayLoop) throws {
        let box = Unmanaged.passRetained(loop as AnyObject)
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { argument in
                let loop = Unmanaged<AnyObject>.fromOpaque(argument!).takeRetainedValue() as! SocketRelayLoop
                loop.run()
                return nil
            }, box.toOpaque())
        guard started == 0 else {
            box.release()
            throw IOError(errnoCode: started, reason: "pthread_create")
        }
        pthread_detach(thread)
    }

    /// Listens on `endpoint` for `service`: on every loop with SO_REUSEPORT when `spread` (the
    /// caller made sure no other program listens there), else on one.
    func listen(_ service: ApplicationService, at endpoint: Endpoint, spread: Bool) async throws -> [Listener] {
        var opened: [Listener] = []
        do {
            for (index, loop) in (spread ? loops[...] : loops.prefix(1)).enumerated() {
                let id = try await withCheckedThrowingContinuation { continuation in
                    loop.send(.listen(endpoint, service, reusePort: spread, done: { continuation.resume(with: $0) }))
                }
                opened.append(Listener(loop: index, id: id))
            }
        } catch {
            await close(opened)
            throw error
        }
        return opened
    }

    func close(_ listeners: [Listener]) async {
        for listener in listeners {
            await withCheckedContinuation { continuation in
                loops[listener.loop].send(.closeListener(listener.id, done: { continuation.resume() }))
            }
        }
    }

    /// Ends every connection at once.
    func abort() async {
        for loop in loops {
            await withCheckedContinuation { continuation in loop.send(.abort(done: { continuation.resume() })) }
        }
    }

    /// The threads end when nothing is left for them (call after closing every listener).
    func finish() {
        for loop in loops { loop.send(.quitWhenIdle) }
    }

    /// Whether every thread has ended.
    var hasEnded: Bool { loops.allSatisfy(\.hasEnded) }
}
