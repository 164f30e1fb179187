import EdgeModel
import NIOCore
import NIOPosix
import Synchronization

/// The authoritative responder on UDP and TCP. Malformed queries get FORMERR when their header
/// can be read and are dropped otherwise; nothing a client sends can crash or stall it.
public final class DNSServer: Sendable {
    public struct Counters: Sendable, Hashable {
        public var queries = 0
        public var formatErrors = 0
        public var dropped = 0
        public var truncated = 0
        /// UDP queries over the rate limit: dropped, and answered truncated (slipped).
        public var rateLimited = 0
        public var slipped = 0
        /// Replies sent, by the question's type and the response code.
        public var answered: [Answered: Int] = [:]

        public init() {}
    }

    /// What a reply was about and how it ended.
    public struct Answered: Sendable, Hashable {
        /// The question's type; nil for a query whose question could not be read.
        public var type: DNSType?
        public var code: DNSResponseCode
    }

    public let zones: ZoneStore
    private let group: any EventLoopGroup
    private let channels = OpenChannels()
    private let tally = Mutex(Counters())
    /// A TCP client that sends nothing for this long is closed. Default 10 s.
    public let tcpIdleTimeout: TimeAmount
    /// UDP sockets sharing the address. Default: one per core.
    public let udpSockets: Int
    private let limiter: Mutex<ResponseRateLimiter>

    public init(
        zones: ZoneStore, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, tcpIdleTimeout: TimeAmount = .seconds(10),
        udpSockets: Int = System.coreCount, rateLimit: ResponseRateLimiter.Settings = .init()
    ) {
        self.zones = zones
        self.group = group
        self.tcpIdleTimeout = tcpIdleTimeout
        self.udpSockets = udpSockets
        limiter = Mutex(ResponseRateLimiter(settings: rateLimit))
    }

    /// What to do with a UDP query from `client` under the rate limit.
    func rateDecision(for client: IPAddress) -> ResponseRateLimiter.Decision {
        let decision = limiter.withLock { $0.decide(for: client, now: .now()) }
        switch decision {
        case .answer: break
        case .drop: tally.withLock { $0.rateLimited += 1 }
        case .slip:
            tally.withLock {
                $0.rateLimited += 1
                $0.slipped += 1
            }
        }
        return decision
    }

    public var counters: Counters { tally.withLock { $0 } }

    /// Listens on UDP and TCP at `endpoint` (port 0: any free port, the same for both when it
    /// can be had); returns where it listens.
    public func start(at endpoint: Endpoint) async throws -> Endpoint {
        // One UDP socket per event loop on the same address (SO_REUSEPORT): the kernel spreads
        // queries over them, so every core answers.
        var bound = endpoint
        for index in 0..<max(1, udpSockets) {
            let address = bound
            let udp = try await group.onLoop { loop in
                DatagramBootstrap(group: loop)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(
                        ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: CInt(SO_REUSEPORT))), value: 1
                    )
                    // Up to 16 queries a system call in (recvmmsg), and their replies out
                    // together when the read is done (sendmmsg).
                    .channelOption(.datagramVectorReadMessageCount, value: 16)
                    .channelOption(.maxMessagesPerRead, value: 4)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(server: self))
                        }
                    }
                    .bind(to: address.socketAddress)
            }.get()
            channels.add(udp)
            if index == 0 { bound = udp.localAddress.flatMap(Endpoint.init) ?? endpoint }
        }
        let address = bound
        let tcp = try await group.onLoop { loop in
            ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(DNSLengthPrefixDecoder()), TCPQueryHandler(server: self))
                    }
                }
                .bind(to: address.socketAddress)
        }.get()
        channels.add(tcp)
        return bound
    }

    public func stop() async {
        await channels.closeAll()
    }

    /// The bytes to send back for one query, or nil to drop it.
    public func respond(to bytes: ByteBuffer, maxSize: (DNSMessage) -> Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        reply(to: bytes, maxSize: maxSize, allocator: allocator)?.bytes
    }

    /// A reply kept from before went out again: counted as the first one was.
    func countRepeated(truncated: Bool, formatError: Bool, answered: Answered) {
        tally.withLock {
            $0.queries += 1
            if truncated { $0.truncated += 1 }
            if formatError { $0.formatErrors += 1 }
            $0.answered[answered, default: 0] += 1
        }
    }

    /// The reply, and whether it was cut to fit or is a FORMERR.
    func reply(
        to bytes: ByteBuffer, maxSize: (DNSMessage) -> Int, allocator: ByteBufferAllocator
    ) -> (bytes: ByteBuffer, truncated: Bool, formatError: Bool, answered: Answered)? {
        tally.withLock { $0.queries += 1 }
        let response: DNSMessage
        let limit: Int
        var type: DNSType?
        do {
            let query = try bytes.readDNSMessage()
            type = query.questions.first?.type
            guard let answer = Answerer.answer(query, zones: zones.snapshot) else {
                tally.withLock { $0.dropped += 1 }
                return nil
            }
            response = answer
            limit = maxSize(query)
            if answer.responseCode == .formatError { tally.withLock { $0.formatErrors += 1 } }
        } catch {
            // Only a readable header that is not itself a response earns a FORMERR.
            guard let id = error.id, bytes.readableBytes >= 3, let flags = bytes.getInteger(at: bytes.readerIndex + 2, as: UInt8.self),
                flags & 0x80 == 0
            else {
                tally.withLock { $0.dropped += 1 }
                return nil
            }
            tally.withLock { $0.formatErrors += 1 }
            response = DNSMessage(id: id, isResponse: true, responseCode: .formatError)
            limit = 512
        }
        var buffer = allocator.buffer(capacity: 512)
        let truncated = buffer.writeDNSMessage(response, maxSize: limit)
        let answered = Answered(type: type, code: response.responseCode)
        tally.withLock {
            if truncated { $0.truncated += 1 }
            $0.answered[answered, default: 0] += 1
        }
        return (buffer, truncated, response.responseCode == .formatError, answered)
    }
}

final class UDPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let server: DNSServer
    /// Replies this socket wrote, for the same queries asked again.
    private var cache = ResponseCache()

    init(server: DNSServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = Endpoint(envelope.remoteAddress)?.address ?? .v4(0)
        let decision = server.rateDecision(for: client)
        guard decision != .drop else { return }
        // Before the zones are read: a change after this leaves the reply uncached.
        let generation = server.zones.generation
        if decision == .answer, let kept = cache.reply(to: envelope.data, generation: generation) {
            server.countRepeated(truncated: kept.truncated, formatError: kept.formatError, answered: kept.answered)
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: kept.reply)), promise: nil)
            return
        }
        // RFC 6891: the requester's payload size, never below 512, capped at what we offer. A
        // slipped answer has room for the question only, so it goes out truncated.
        let reply = server.reply(
            to: envelope.data,
            maxSize: { query in
                decision == .slip
                    ? 12 + (query.questions.first.map { $0.name.wireLength + 4 } ?? 0) + (query.edns == nil ? 0 : 11)
                    : Int(min(max(query.edns?.udpPayloadSize ?? 512, 512), Answerer.udpPayloadSize))
            }, allocator: context.channel.allocator)
        guard let reply else { return }
        if decision == .answer {
            cache.keep(
                query: envelope.data, reply: reply.bytes, truncated: reply.truncated, formatError: reply.formatError,
                answered: reply.answered, generation: generation)
        }
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply.bytes)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An ICMP error about one client must not stop the listener.
    }
}

/// Splits a TCP stream into DNS messages by their two-byte length prefix.
struct DNSLengthPrefixDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: DNSServer
    private var idle: Scheduled<Void>?

    init(server: DNSServer) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        armIdleTimer(context)
        guard let reply = server.respond(to: unwrapInboundIn(data), maxSize: { _ in 65535 }, allocator: context.channel.allocator) else {
            context.close(promise: nil)
            return
        }
        var framed = context.channel.allocator.buffer(capacity: reply.readableBytes + 2)
        framed.writeInteger(UInt16(reply.readableBytes))
        framed.writeImmutableBuffer(reply)
        context.writeAndFlush(wrapOutboundOut(framed), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func armIdleTimer(_ context: ChannelHandlerContext) {
        idle?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        idle = context.eventLoop.scheduleTask(in: server.tcpIdleTimeout) { bound.value.close(promise: nil) }
    }
}
