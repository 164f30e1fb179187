import NIOCore
import Synchronization

/// Connects over IPv6 first and over IPv4 too once IPv6 has failed or not connected within
/// `delay` (RFC 8305's connection attempt delay, 250 ms by default); the first connection made
/// wins, a later one is closed.
struct HappyEyeballs: Sendable {
    var delay: TimeAmount = .milliseconds(250)

    private struct State {
        var decided = false
        var secondStarted = false
        var failures: [any Error] = []
    }

    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    /// `attempts[0]` first (IPv6), `attempts[1]` after the delay; the future gives the channel
    /// and which attempt made it.
    func connect(
        _ attempts: [@Sendable () -> EventLoopFuture<any Channel>], on loop: any EventLoop
    ) -> EventLoopFuture<(channel: any Channel, attempt: Int)> {
        let promise = loop.makePromise(of: (channel: any Channel, attempt: Int).self)
        let shared = Shared()
        let total = attempts.count
        @Sendable func start(_ index: Int) {
            attempts[index]().whenComplete { result in
                switch result {
                case .success(let channel):
                    let won = shared.state.withLock { state in
                        guard !state.decided else { return false }
                        state.decided = true
                        return true
                    }
                    if won { promise.succeed((channel, index)) } else { channel.close(promise: nil) }
                case .failure(let error):
                    let (startNext, allFailed) = shared.state.withLock { state -> (Bool, Bool) in
                        state.failures.append(error)
                        let next = index == 0 && total > 1 && !state.secondStarted
                        if next { state.secondStarted = true }
                        let all = state.failures.count == total && !state.decided
                        if all { state.decided = true }
                        return (next, all)
                    }
                    if startNext { start(1) }
                    if allFailed { promise.fail(error) }
                }
            }
        }
        start(0)
        if total > 1 {
            let timer = loop.scheduleTask(in: delay) {
                let go = shared.state.withLock { state -> Bool in
                    guard !state.decided, !state.secondStarted else { return false }
                    state.secondStarted = true
                    return true
                }
                if go { start(1) }
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return promise.futureResult
    }
}
