import NIOCore
import Synchronization

/// The connections a node has accepted and not yet closed, so it can end them all at once.
final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func insert(_ channel: any Channel) {
        channels.withLock { $0[ObjectIdentifier(channel)] = channel }
    }

    func remove(_ channel: any Channel) {
        channels.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Keeps the channel until it closes.
    func track(_ channel: any Channel) {
        insert(channel)
        channel.closeFuture.whenComplete { _ in self.remove(channel) }
    }

    var count: Int { channels.withLock { $0.count } }

    /// Closes every connection and waits until each has.
    func closeAll() async {
        let open = channels.withLock { Array($0.values) }
        for channel in open { channel.close(promise: nil) }
        for channel in open { try? await channel.closeFuture.get() }
    }
}
