import NIOCore
import Synchronization

/// The channels a server has open, closed together when it stops.
public final class OpenChannels: Sendable {
    private let channels = Mutex<[any Channel]>([])

    public init() {}

    public func add(_ channel: any Channel) {
        channels.withLock { $0.append(channel) }
    }

    /// Closes every channel added so far; safe to call more than once.
    public func closeAll() async {
        let open = channels.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in open { try? await channel.close() }
    }
}
