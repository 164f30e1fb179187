import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// Idle TCP connections to the peers relayed paths start with, a few per event loop, so a
/// relayed connection starts without a handshake of its own. A connection taken is used for
/// one client connection; the pool opens a replacement behind it.
final class RelayPool: Sendable {
    private struct Key: Hashable {
        var loop: ObjectIdentifier
        var peer: String
    }

    let port: UInt16
    /// Connections leave from the node's own address: peers accept relays from edges only.
    let source: IPAddress
    let peers: [String: IPAddress]
    let size: Int
    private let group: any EventLoopGroup
    private let idle = Mutex<[Key: [any Channel]]>([:])
    private let opening = Mutex<[Key: Int]>([:])
    private let closed = Mutex(false)

    init(port: UInt16, source: IPAddress, peers: [String: IPAddress], group: any EventLoopGroup, size: Int) {
        self.port = port
        self.source = source
        self.peers = peers
        self.group = group
        self.size = size
    }

    /// A connection to `peer` on `loop`: a warm one when there is one, else a new one.
    func take(_ peer: String, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let key = Key(loop: ObjectIdentifier(loop), peer: peer)
        while let channel = idle.withLock({ $0[key]?.popLast() }) {
            // A warm connection the peer closed (it stopped, or was killed) is never handed out.
            // The watcher is looked up first: removing by name cannot say synchronously that it was not there.
            guard channel.isActive, let watcher = try? channel.pipeline.syncOperations.context(name: IdleRelayWatcher.name) else {
                channel.close(promise: nil)
                continue
            }
            channel.pipeline.syncOperations.removeHandler(context: watcher, promise: nil)
            fill(key, on: loop)
            return loop.makeSucceededFuture(channel)
        }
        fill(key, on: loop)
        return open(peer, on: loop)
    }

    /// Keeps `size` idle connections to `peer` on every event loop.
    func warm(_ peer: String) {
        for loop in group.makeIterator() { fill(Key(loop: ObjectIdentifier(loop), peer: peer), on: loop) }
    }

    private func fill(_ key: Key, on loop: any EventLoop) {
        guard !closed.withLock({ $0 }) else { return }
        let missing: Int = idle.withLock { idle in
            opening.withLock { opening in
                let have = (idle[key]?.filter(\.isActive).count ?? 0) + (opening[key] ?? 0)
                let missing = max(0, size - have)
                opening[key, default: 0] += missing
                return missing
            }
        }
        for _ in 0..<missing {
            open(key.peer, on: loop, watched: true).whenComplete { result in
                self.opening.withLock { $0[key, default: 1] -= 1 }
                guard case .success(let channel) = result else { return }
                if self.closed.withLock({ $0 }) {
                    channel.close(promise: nil)
                } else {
                    self.idle.withLock { $0[key, default: []].append(channel) }
                }
            }
        }
    }

    private func open(_ peer: String, on loop: any EventLoop, watched: Bool = false) -> EventLoopFuture<any Channel> {
        guard let address = peers[peer] else {
            return loop.makeFailedFuture(RelayHeaderError(description: "\(peer) is not a known edge node"))
        }
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if watched { try channel.pipeline.syncOperations.addHandler(IdleRelayWatcher(), name: IdleRelayWatcher.name) }
                }
            }
            .bind(to: Endpoint(source, 0).socketAddress)
            .connectTimeout(.seconds(5))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(to: Endpoint(address, port).socketAddress)
    }

    func close() async {
        closed.withLock { $0 = true }
        let all = idle.withLock { idle in
            defer { idle.removeAll() }
            return idle.values.flatMap { $0 }
        }
        for channel in all { try? await channel.close() }
    }
}

/// Sits on a warm connection while it waits in the pool: nothing may arrive on it, so any byte,
/// end of input or error means the peer is gone, and the connection is closed before it can be
/// handed out.
final class IdleRelayWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let name = "edgesim.idle-relay"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
