import Glibc
import NIOCore
import NIOEmbedded
import Testing

@testable import EdgeProxy

/// Counts the read requests that reach the socket (it sits between the relay and the head).
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Records output half-closes and keeps them from the embedded channel, which can only close fully.
final class OutputCloseRecorder: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var outputCloses = 0

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            outputCloses += 1
            promise?.succeed()
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

@Suite struct RelayHandlerTests {
    func pair() throws -> (client: EmbeddedChannel, origin: EmbeddedChannel, clientReads: ReadCounter, originCloses: OutputCloseRecorder) {
        let loop = EmbeddedEventLoop()
        let counter = ReadCounter()
        let recorder = OutputCloseRecorder()
        let clientRelay = RelayHandler(onRead: { _ in }, onError: { _ in })
        let originRelay = RelayHandler(onRead: { _ in }, onError: { _ in })
        let client = EmbeddedChannel(handlers: [counter, clientRelay], loop: loop)
        let origin = EmbeddedChannel(handlers: [recorder, originRelay], loop: loop)
        for channel in [client, origin] { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        RelayHandler.join(clientRelay, originRelay)
        return (client, origin, counter, recorder)
    }

    @Test func readsAreHeldWhileTheOtherSideIsFull() throws {
        let (client, origin, counter, _) = try pair()
        client.read()
        #expect(counter.reads == 1)
        origin.isWritable = false
        origin.pipeline.fireChannelWritabilityChanged()
        client.read()
        #expect(counter.reads == 1, "no read while the origin cannot take more")
        origin.isWritable = true
        origin.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2, "the held read goes ahead once the origin drains")
        _ = try client.finish(acceptAlreadyClosed: true)
        _ = try origin.finish(acceptAlreadyClosed: true)
    }

    @Test func bytesAndHalfCloseCrossOver() throws {
        let (client, origin, _, originCloses) = try pair()
        try client.writeInbound(ByteBuffer(string: "hello"))
        #expect(try origin.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        // The empty write that orders the shutdown after queued bytes.
        #expect(try origin.readOutbound(as: ByteBuffer.self)?.readableBytes == 0)
        #expect(originCloses.outputCloses == 1, "the client's end of input becomes the origin's end of output")
        #expect(origin.isActive)
        try client.close().wait()
        #expect(origin.isActive, "after a clean end of input, what is queued for the origin still goes")
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? origin.finish(acceptAlreadyClosed: true)
    }

    /// A side that closes without an end of input first (its output was already shut) ended
    /// cleanly too: the other side's output shuts after what is queued, not at once.
    @Test func aCleanCloseIsAnEndOfInputForTheOtherSide() throws {
        let (client, origin, _, originCloses) = try pair()
        try client.writeInbound(ByteBuffer(string: "last words"))
        try client.close().wait()
        #expect(try origin.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "last words"))
        #expect(try origin.readOutbound(as: ByteBuffer.self)?.readableBytes == 0)
        #expect(originCloses.outputCloses == 1)
        #expect(origin.isActive)
        _ = try? origin.finish(acceptAlreadyClosed: true)
    }

    /// A side that fails (a reset) closes the other at once.
    @Test func aFailedSideClosesTheOtherAtOnce() throws {
        let (client, origin, _, _) = try pair()
        try client.writeInbound(ByteBuffer(string: "hello"))
        client.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        #expect(!client.isActive)
        #expect(!origin.isActive, "a reset on one side closes the other")
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? origin.finish(acceptAlreadyClosed: true)
    }
}

@Suite struct RelayHandlerEarlyDataTests {
    @Test func dataAndEndOfInputBeforeTheJoinAreDeliveredInOrder() throws {
        let loop = EmbeddedEventLoop()
        let recorder = OutputCloseRecorder()
        let clientRelay = RelayHandler(onRead: { _ in }, onError: { _ in })
        let originRelay = RelayHandler(onRead: { _ in }, onError: { _ in })
        let client = EmbeddedChannel(handlers: [clientRelay], loop: loop)
        let origin = EmbeddedChannel(handlers: [recorder, originRelay], loop: loop)
        for channel in [client, origin] { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        // The peer sent its bytes and its FIN before the origin connection existed.
        try client.writeInbound(ByteBuffer(string: "early "))
        try client.writeInbound(ByteBuffer(string: "bytes"))
        client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try origin.readOutbound(as: ByteBuffer.self) == nil)
        RelayHandler.join(clientRelay, originRelay)
        #expect(try origin.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "early "))
        #expect(try origin.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "bytes"))
        #expect(try origin.readOutbound(as: ByteBuffer.self)?.readableBytes == 0)
        #expect(recorder.outputCloses == 1)
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? origin.finish(acceptAlreadyClosed: true)
    }
}
