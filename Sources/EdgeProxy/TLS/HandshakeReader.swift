import NIOCore
import NIOSSL
import NIOTLS

/// Sits behind a TLS handler while it shakes hands, reports the outcome once, and then leaves
/// the pipeline, taking its `ReadPump` (in front of the TLS handler) with it. Decrypted bytes
/// that arrive meanwhile go on to the relay.
final class HandshakeReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var promise: EventLoopPromise<String?>?
    private let pump = ReadPump()

    /// Completes with the negotiated application protocol, or fails with the handshake's error.
    init(promise: EventLoopPromise<String?>) {
        self.promise = promise
    }

    /// Puts the reader behind `tls` and its pump in front of it.
    func install(around tls: any ChannelHandler, in operations: ChannelPipeline.SynchronousOperations) throws {
        try operations.addHandler(pump, position: .before(tls))
        try operations.addHandler(self, position: .after(tls))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event, let promise {
            self.promise = nil
            promise.succeed(negotiated)
            context.fireUserInboundEventTriggered(event)
            leave(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A handshake error is this handler's to report; the TLS handler closes the channel.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let promise else {
            context.fireErrorCaught(error)
            return
        }
        self.promise = nil
        promise.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let promise {
            self.promise = nil
            promise.fail(HandshakeClosed())
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let promise {
            self.promise = nil
            promise.fail(HandshakeClosed())
        }
    }

    private func leave(context: ChannelHandlerContext) {
        let operations = context.pipeline.syncOperations
        operations.removeHandler(pump, promise: nil)
        operations.removeHandler(context: context, promise: nil)
    }
}

/// Reads for a TLS handler during its handshake, from in front of it. The relay behind holds
/// reads until both legs are joined, and a TLS handler that took bytes without finishing a
/// message passes nothing on (not even the end of the read), so nothing behind it could ask.
final class ReadPump: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        context.read()
    }
}

/// The peer closed the connection before the handshake finished.
struct HandshakeClosed: Error, CustomStringConvertible {
    var description: String { "the connection closed during the TLS handshake" }
}

extension TLSVersion {
    /// As openssl and the reference name it.
    var name: String {
        switch self {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}

/// A handshake error in words for an event: the TLS library's reason without its internals.
func handshakeReason(_ error: any Error) -> String {
    guard case NIOSSLError.handshakeFailed(let failure) = error else { return "\(error)" }
    switch failure {
    case .sslError(let stack), .unknownError(let stack):
        let reasons = stack.map { entry -> String in
            // "Error: 268435696 error:100000f0:SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL at file:line" → the reason.
            let text = "\(entry)"
            guard let marker = text.range(of: "OPENSSL_internal:") else { return text }
            return String(text[marker.upperBound...].prefix { $0 != " " })
        }
        return "TLS handshake failed: " + (reasons.isEmpty ? "\(failure)" : reasons.joined(separator: ", "))
    default:
        return "TLS handshake failed: \(failure)"
    }
}
