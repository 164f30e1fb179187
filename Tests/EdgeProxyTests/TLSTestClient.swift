import EdgeModel
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A TLS client for tests: trusts one CA file, sends its bytes, and reads until it has as many
/// back as asked for or the server closes.
enum TLSTestClient {
    struct Result {
        var received: [UInt8]
        var version: TLSVersion?
        var negotiatedProtocol: String?
    }

    static func exchange(
        with server: Endpoint, caFile: String, serverName: String?, sending bytes: [UInt8], expecting count: Int,
        applicationProtocols: [String] = []
    ) async throws -> Result {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caFile)
        configuration.applicationProtocols = applicationProtocols
        let context = try NIOSSLContext(configuration: configuration)
        let negotiated = ProtocolWatcher()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: server.socketAddress) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                try channel.pipeline.syncOperations.addHandler(negotiated)
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        // Bounded: a server that neither answers nor closes is given 10 s.
        let deadline = channel.channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            var received: [UInt8] = []
            do {
                for try await chunk in inbound {
                    received += chunk.readableBytesView
                    if received.count >= count { break }
                }
            } catch NIOSSLError.uncleanShutdown {
                // The server closed without close_notify; what arrived is checked by the caller.
            }
            let version = try? await channel.channel.nioSSL_tlsVersion().get()
            return Result(received: received, version: version, negotiatedProtocol: negotiated.value)
        }
    }
}

/// Notes the application protocol a handshake settled on.
final class ProtocolWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private(set) var value: String?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event { value = negotiated }
        context.fireUserInboundEventTriggered(event)
    }
}
