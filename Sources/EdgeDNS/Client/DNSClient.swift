import EdgeModel
import NIOCore
import NIOPosix

/// Asks one DNS server a question over UDP, retrying, and again over TCP when the answer was
/// truncated. Replies that do not match the question's id and name are ignored.
public struct DNSClient: Sendable {
    public var server: Endpoint
    /// How long to wait for each UDP attempt. Default 2 s.
    public var timeout: TimeAmount
    /// UDP attempts before giving up. Default 2.
    public var attempts: Int
    private let group: any EventLoopGroup

    public init(
        server: Endpoint, timeout: TimeAmount = .seconds(2), attempts: Int = 2,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.server = server
        self.timeout = timeout
        self.attempts = attempts
        self.group = group
    }

    public struct Timeout: Error, CustomStringConvertible {
        public var description: String
    }

    public func query(_ name: DNSName, _ type: DNSType) async throws -> DNSMessage {
        var lastError: any Error = Timeout(description: "no answer")
        for _ in 0..<max(1, attempts) {
            do {
                let reply = try await exchangeUDP(DNSMessage.query(id: .random(in: .min ... .max), name: name, type: type))
                if reply.truncated {
                    return try await exchangeTCP(DNSMessage.query(id: .random(in: .min ... .max), name: name, type: type))
                }
                return reply
            } catch let error as Timeout {
                lastError = error
            }
        }
        throw lastError
    }

    private func exchangeUDP(_ query: DNSMessage) async throws -> DNSMessage {
        let loop = group.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        // Every way out completes the promise: one left pending is a leak NIO traps on.
        do {
            let bindAddress = server.address.isIPv4 ? "0.0.0.0" : "::"
            let channel = try await loop.flatSubmit {
                DatagramBootstrap(group: loop)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                ReplyMatcher<AddressedEnvelope<ByteBuffer>>(query: query, promise: promise) { $0.data })
                        }
                    }
                    .bind(host: bindAddress, port: 0)
            }.get()
            defer { channel.close(promise: nil) }
            let timer = loop.scheduleTask(in: timeout) { promise.fail(Timeout(description: "no answer from \(server) within \(timeout)")) }
            defer { timer.cancel() }
            var bytes = channel.allocator.buffer(capacity: 64)
            bytes.writeDNSMessage(query)
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: server.socketAddress, data: bytes))
            return try await promise.futureResult.get()
        } catch {
            promise.fail(error)
            throw error
        }
    }

    private func exchangeTCP(_ query: DNSMessage) async throws -> DNSMessage {
        let loop = group.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        // Every way out completes the promise: one left pending is a leak NIO traps on.
        do {
            let channel = try await loop.flatSubmit { [server, timeout] in
                ClientBootstrap(group: loop)
                    .connectTimeout(timeout)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers(
                                ByteToMessageHandler(DNSLengthPrefixDecoder()),
                                ReplyMatcher<ByteBuffer>(query: query, promise: promise) { $0 })
                        }
                    }
                    .connect(to: server.socketAddress)
            }.get()
            defer { channel.close(promise: nil) }
            let timer = loop.scheduleTask(in: timeout) {
                promise.fail(Timeout(description: "no TCP answer from \(server) within \(timeout)"))
            }
            defer { timer.cancel() }
            var message = channel.allocator.buffer(capacity: 64)
            message.writeDNSMessage(query)
            var framed = channel.allocator.buffer(capacity: message.readableBytes + 2)
            framed.writeInteger(UInt16(message.readableBytes))
            framed.writeImmutableBuffer(message)
            try await channel.writeAndFlush(framed)
            return try await promise.futureResult.get()
        } catch {
            promise.fail(error)
            throw error
        }
    }
}

extension DNSMessage {
    /// True when this is the reply to `query`.
    func answers(_ query: DNSMessage) -> Bool {
        isResponse && id == query.id && questions == query.questions
    }
}

/// Completes the promise with the first reply that answers the query; others are ignored.
/// `Message` is an addressed datagram (UDP) or a length-delimited message (TCP).
final class ReplyMatcher<Message>: ChannelInboundHandler {
    typealias InboundIn = Message
    private let query: DNSMessage
    private let promise: EventLoopPromise<DNSMessage>
    private let bytes: (Message) -> ByteBuffer

    init(query: DNSMessage, promise: EventLoopPromise<DNSMessage>, bytes: @escaping (Message) -> ByteBuffer) {
        self.query = query
        self.promise = promise
        self.bytes = bytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let reply = try? bytes(unwrapInboundIn(data)).readDNSMessage(), reply.answers(query) else { return }
        promise.succeed(reply)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}
