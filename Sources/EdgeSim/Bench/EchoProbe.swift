import EdgeModel
import NIOCore
import NIOPosix

/// One TCP connection made from inside an edge node's own namespace to a smart-routed
/// application: the edge serves it itself, so the entry link is nothing and what is measured
/// is the chosen path. Sends a few bytes, waits for the echo, several times.
struct EchoProbe {
    struct Result {
        /// From the start of connecting to the first echo.
        var firstByteMs: Double
        /// Median round trip of the exchanges after the first.
        var exchangeMs: Double?
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(fleet: Fleet, from host: String, to target: Endpoint?, exchanges: Int, timeout: Duration = .seconds(5)) async throws
        -> Result
    {
        guard let target else { throw Failure(description: "no address") }
        let loop = fleet.group(for: host).next()
        let started = NIODeadline.now()
        let promise = loop.makePromise(of: [NIODeadline].self)
        let channel = try await loop.flatSubmit {
            ClientBootstrap(group: loop)
                .connectTimeout(.nanoseconds(timeout.components.seconds * 1_000_000_000))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(EchoTimer(exchanges: max(1, exchanges), promise: promise))
                    }
                }
                .connect(to: target.socketAddress)
        }.get()
        let deadline = loop.scheduleTask(in: .nanoseconds(timeout.components.seconds * 1_000_000_000)) {
            promise.fail(Failure(description: "no echo within \(timeout)"))
        }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        let times = try await promise.futureResult.get()
        var gaps: [Double] = []
        for (a, b) in zip(times, times.dropFirst()) { gaps.append(Double((b - a).nanoseconds) / 1e6) }
        gaps.sort()
        return Result(
            firstByteMs: Double((times[0] - started).nanoseconds) / 1e6, exchangeMs: gaps.isEmpty ? nil : gaps[gaps.count / 2])
    }
}

/// Writes 32 bytes, waits for all of them back, notes the time, and again.
private final class EchoTimer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let exchanges: Int
    private let promise: EventLoopPromise<[NIODeadline]>
    private var times: [NIODeadline] = []
    private var pending = 0
    private static let size = 32

    init(exchanges: Int, promise: EventLoopPromise<[NIODeadline]>) {
        self.exchanges = exchanges
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        pending = Self.size
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(repeating: UInt8(ascii: "e"), count: Self.size)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending -= unwrapInboundIn(data).readableBytes
        guard pending <= 0 else { return }
        times.append(.now())
        if times.count >= exchanges {
            promise.succeed(times)
        } else {
            send(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(EchoProbe.Failure(description: "closed after \(times.count) echoes"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
