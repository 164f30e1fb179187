import EdgeModel
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Full and strict modes' way to an origin: the leg another connector opens (straight, or
/// through other edges, with its PROXY or relay header already written in the clear), then a
/// TLS handshake on it offering the client's name and protocols. Strict mode checks the
/// origin's certificate and says why it refuses one.
struct TLSOriginConnector: OriginConnector {
    var inner: any OriginConnector
    var tls: EdgeTLS
    /// Sent as SNI, and the name strict mode checks; nil for none.
    var serverName: String?
    var applicationProtocols: [String]
    /// The protocol the origin chose, once its handshake is done.
    let negotiatedProtocol = NIOLockedValueBox<String?>(nil)

    var via: [String] { inner.via }

    /// The origin leg opened, but its handshake failed or its certificate was refused.
    struct HandshakeFailure: Error, CustomStringConvertible {
        var status: StatusCode
        var description: String
    }

    func connect(_ request: OriginRequest, leg: NIOLoopBound<[any ChannelHandler]>, on loop: any EventLoop) -> EventLoopFuture<any Channel>
    {
        let tls = tls
        let serverName = serverName
        let applicationProtocols = applicationProtocols
        let negotiatedProtocol = negotiatedProtocol
        return inner.connect(request, leg: leg, on: loop).flatMap { channel in
            let refusal = NIOLockedValueBox<String?>(nil)
            let handshake = loop.makePromise(of: String?.self)
            do {
                let context = try tls.originContext(applicationProtocols: applicationProtocols)
                let handler: NIOSSLClientHandler
                if tls.mode == .strict {
                    let address = request.origin.address
                    handler = try NIOSSLClientHandler(context: context, serverHostname: serverName) { chain, promise in
                        promise.completeWithTask {
                            if let reason = await tls.verifyOrigin(chain: chain, name: serverName, address: address) {
                                refusal.withLockedValue { $0 = reason }
                                return .failed
                            }
                            return .certificateVerified
                        }
                    }
                } else {
                    handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                }
                let operations = channel.pipeline.syncOperations
                try operations.addHandler(handler, position: .first)
                try HandshakeReader(promise: handshake).install(around: handler, in: operations)
            } catch {
                channel.close(promise: nil)
                return loop.makeFailedFuture(
                    HandshakeFailure(status: .originHandshakeFailed, description: "cannot start TLS to the origin: \(error)"))
            }
            return handshake.futureResult.flatMapError { error in
                channel.close(promise: nil)
                if let reason = refusal.withLockedValue({ $0 }) {
                    return loop.makeFailedFuture(HandshakeFailure(status: .originCertificateInvalid, description: reason))
                }
                return loop.makeFailedFuture(
                    HandshakeFailure(status: .originHandshakeFailed, description: "origin: \(handshakeReason(error))"))
            }.map { negotiated in
                negotiatedProtocol.withLockedValue { $0 = negotiated }
                return channel
            }
        }
    }
}
