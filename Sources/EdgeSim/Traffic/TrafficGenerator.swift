import EdgeDNS
import EdgeModel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Generates one traffic step's connections or UDP flows from one client: bounded in count,
/// concurrency, rate and time, each one timed and checked end to end.
public struct TrafficGenerator: Sendable {
    public struct Request: Sendable {
        public var clientHost: String
        /// The client's own address; every socket is bound to it.
        public var source: IPAddress
        /// The client's IPv6 address, for `family: ipv6` and `any` (netns mode).
        public var sourceV6: IPAddress?
        public var app: Application
        public var step: TrafficStep
        public var exchange: ExchangeKind
        public var names: NameCache
        /// Nothing new starts after this.
        public var deadline: ContinuousClock.Instant
        public var connectTimeout: TimeAmount
        /// How long a UDP flow waits for its echo.
        public var replyTimeout: TimeAmount
        /// For an application with edge TLS: how the client speaks it.
        public var tls: ClientTLS?

        public init(
            clientHost: String, source: IPAddress, sourceV6: IPAddress? = nil, app: Application, step: TrafficStep, exchange: ExchangeKind,
            names: NameCache, deadline: ContinuousClock.Instant, connectTimeout: TimeAmount = .seconds(5),
            replyTimeout: TimeAmount = .seconds(2)
        ) {
            self.clientHost = clientHost
            self.source = source
            self.sourceV6 = sourceV6
            self.app = app
            self.step = step
            self.exchange = exchange
            self.names = names
            self.deadline = deadline
            self.connectTimeout = connectTimeout
            self.replyTimeout = replyTimeout
        }
    }

    /// A client's TLS towards an application with edge TLS.
    public struct ClientTLS: Sendable {
        /// CA file to trust; nil checks nothing (an application with its own certificate).
        public var caFile: String?
        /// Sent as SNI and checked against the certificate.
        public var serverName: String
        /// The one version to offer; nil offers 1.2 and 1.3.
        public var version: TLSVersionSetting?

        public init(caFile: String?, serverName: String, version: TLSVersionSetting?) {
            self.caFile = caFile
            self.serverName = serverName
            self.version = version
        }

        func context() throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile { configuration.trustRoots = .file(caFile) } else { configuration.certificateVerification = .none }
            if let version {
                let pinned: TLSVersion =
                    switch version {
                    case .v1_1: .tlsv11
                    case .v1_2: .tlsv12
                    case .v1_3: .tlsv13
                    }
                configuration.minimumTLSVersion = pinned
                configuration.maximumTLSVersion = pinned
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }

    let group: any EventLoopGroup

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Runs the step to the end; `onResult` hears about each connection as it finishes.
    public func run(_ request: Request, onResult: @escaping @Sendable (ConnectionResult) -> Void) async -> [ConnectionResult] {
        let step = request.step
        let began = ContinuousClock.now
        let tls: Result<NIOSSLContext, any Error>? = request.tls.map { settings in Result { try settings.context() } }
        var pinned: Targets?
        if !step.resolve { pinned = await targets(request) }
        return await withTaskGroup(of: ConnectionResult.self) { tasks in
            var results: [ConnectionResult] = []
            var running = 0
            for index in 0..<step.connections {
                if let rate = step.rate, rate > 0 {
                    // Pacing, not synchronisation: connection i starts i/rate seconds in.
                    try? await Task.sleep(until: began + .seconds(Double(index) / rate))
                }
                if running >= step.concurrency, let done = await tasks.next() {
                    running -= 1
                    results.append(done)
                }
                guard ContinuousClock.now < request.deadline, !Task.isCancelled else { break }
                running += 1
                tasks.addTask { [pinned] in
                    let result = await one(index, request: request, pinned: pinned, tls: tls)
                    onResult(result)
                    return result
                }
            }
            for await done in tasks { results.append(done) }
            return results
        }
    }

    private func one(_ index: Int, request: Request, pinned: Targets?, tls: Result<NIOSSLContext, any Error>?) async -> ConnectionResult {
        let app = request.app
        let port = UInt16(Int(app.edge.ports.first) + index % app.edge.ports.count)
        var result = ConnectionResult(
            client: request.clientHost, app: app.id, transport: app.edge.transport.rawValue, address: "", ok: false, error: nil,
            started: Date().timeIntervalSince1970, ended: 0, connectMs: nil, firstByteMs: nil, held: request.step.hold > .zero)
        defer { result.ended = Date().timeIntervalSince1970 }
        let found: Targets
        if let pinned { found = pinned } else { found = await targets(request) }
        // Where to go, as (source, target address) in the order to try them: IPv6 first for `any`.
        var routes: [(source: IPAddress, address: IPAddress)] = []
        if let v6 = found.v6.first, let source = request.sourceV6 { routes.append((source, v6)) }
        if let v4 = found.v4.first { routes.append((request.source, v4)) }
        if app.edge.transport == .udp { routes = Array(routes.prefix(1)) }
        guard !routes.isEmpty else {
            result.error = found.problem ?? "resolving \(app.dns.name): no address"
            result.ended = Date().timeIntervalSince1970
            return result
        }
        result.address = Endpoint(routes[0].address, port).description
        let bytes = max(Int(request.step.bytes), 1)
        let httpReply = NIOLockedValueBox<ExchangeHandler.HTTPReply?>(nil)
        do {
            switch app.edge.transport {
            case .tcp:
                let (connect, firstByte, used, version) = try await tcp(
                    to: routes.map { ($0.source, Endpoint($0.address, port)) }, bytes: bytes, request: request, tls: try tls?.get(),
                    httpReply: httpReply)
                result.address = used.description
                result.tlsVersion = version
                result.connectMs = connect
                result.firstByteMs = firstByte
            case .udp:
                result.firstByteMs = try await udp(
                    to: Endpoint(routes[0].address, port), from: routes[0].source, bytes: bytes, request: request)
            }
            result.ok = true
        } catch let refused as ExchangeHandler.Refused {
            result.refusal = refused.reply
            result.error = refused.description
        } catch {
            result.error = "\(error)"
        }
        if let reply = httpReply.withLockedValue({ $0 }) {
            result.httpStatus = reply.status
            result.headersSeen = Self.headersListed(in: reply.body)
        }
        result.ended = Date().timeIntervalSince1970
        return result
    }

    /// `Name: value` lines of an answer body (what the built-in http origin says it received),
    /// names lowercased; nil when there are none.
    static func headersListed(in body: String) -> [String: String]? {
        var headers: [String: String] = [:]
        for line in body.split(separator: "\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return headers.isEmpty ? nil : headers
    }

    /// The application's addresses the step's family asks for, or why there are none.
    struct Targets: Sendable {
        var v4: [IPAddress] = []
        var v6: [IPAddress] = []
        var problem: String?
    }

    private func targets(_ request: Request) async -> Targets {
        let name = request.app.dns.name
        var found = Targets()
        let family = request.step.family
        if family != .ipv4 {
            if request.sourceV6 == nil {
                found.problem = "\(request.clientHost) has no IPv6 address in this mode (netns mode gives one)"
            } else {
                do { found.v6 = try await request.names.addresses(of: name, ipv6: true) } catch {
                    found.problem = "resolving \(name): \(error)"
                }
            }
        }
        if family != .ipv6 {
            do { found.v4 = try await request.names.addresses(of: name) } catch { found.problem = "resolving \(name): \(error)" }
        }
        return found
    }

    /// Connects over the first route, or races them as happy eyeballs do when there are two.
    private func tcp(
        to routes: [(source: IPAddress, target: Endpoint)], bytes: Int, request: Request, tls: NIOSSLContext?,
        httpReply: NIOLockedValueBox<ExchangeHandler.HTTPReply?>
    ) async throws
        -> (
            Double, Double?, Endpoint, String?
        )
    {
        let started = NIODeadline.now()
        let attempts = routes.map { route in
            { @Sendable () -> EventLoopFuture<any Channel> in
                group.onLoop { loop in
                    ClientBootstrap(group: loop)
                        .connectTimeout(request.connectTimeout)
                        .channelOption(.allowRemoteHalfClosure, value: true)
                        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .bind(to: Endpoint(route.source, 0).socketAddress)
                        .connect(to: route.target.socketAddress)
                }
            }
        }
        let (channel, attempt) = try await HappyEyeballs().connect(attempts, on: group.next()).get()
        let used = routes[attempt].target
        let connected = NIODeadline.now()
        let hold = TimeAmount.nanoseconds(Int64(request.step.hold.seconds * 1e9))
        let promise = channel.eventLoop.makePromise(of: NIODeadline?.self)
        let timeout = channel.eventLoop.scheduleTask(in: request.connectTimeout + hold + .seconds(10)) {
            promise.fail(ExchangeHandler.Failure(description: "no answer within the time allowed"))
            channel.close(promise: nil)
        }
        let negotiated = NegotiatedVersion()
        do {
            try await channel.eventLoop.submit {
                if let tls, let name = request.tls?.serverName {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                    try channel.pipeline.syncOperations.addHandler(negotiated)
                }
                try channel.pipeline.syncOperations.addHandler(
                    ExchangeHandler(
                        kind: request.exchange, bytes: bytes, hold: hold, host: request.app.dns.name, promise: promise, httpReply: httpReply
                    ))
            }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        defer { timeout.cancel() }
        let firstByte = try await promise.futureResult.get()
        return (
            Self.milliseconds(from: started, to: connected), firstByte.map { Self.milliseconds(from: connected, to: $0) }, used,
            negotiated.version.withLockedValue { $0 }
        )
    }

    private func udp(to endpoint: Endpoint, from source: IPAddress, bytes: Int, request: Request) async throws -> Double {
        let promise = group.next().makePromise(of: NIODeadline.self)
        let payload = Payload.of(bytes)
        let expected = payload
        let channel = try await group.onLoop { loop in
            DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramEchoCheck(expected: expected, promise: promise))
                    }
                }
                .bind(to: Endpoint(source, 0).socketAddress)
        }.get()
        defer { channel.close(promise: nil) }
        let started = NIODeadline.now()
        let timeout = channel.eventLoop.scheduleTask(in: request.replyTimeout) {
            promise.fail(ExchangeHandler.Failure(description: "no reply within \(request.replyTimeout)"))
        }
        defer { timeout.cancel() }
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: endpoint.socketAddress, data: payload)).get()
        let replied = try await promise.futureResult.get()
        return Self.milliseconds(from: started, to: replied)
    }

    static func milliseconds(from start: NIODeadline, to end: NIODeadline) -> Double {
        Double((end - start).nanoseconds) / 1e6
    }
}

/// Fulfils the promise when the datagram that comes back is the one sent.
final class DatagramEchoCheck: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let expected: ByteBuffer
    let promise: EventLoopPromise<NIODeadline>

    init(expected: ByteBuffer, promise: EventLoopPromise<NIODeadline>) {
        self.expected = expected
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data).data
        if reply == expected {
            promise.succeed(.now())
        } else {
            promise.fail(ExchangeHandler.Failure(description: "the reply (\(reply.readableBytes) bytes) differs from what was sent"))
        }
    }
}

/// Notes the TLS version a generated connection negotiated.
final class NegotiatedVersion: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let version = NIOLockedValueBox<String?>(nil)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event,
            let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).tlsVersion
        {
            let name: String =
                switch tls {
                case .tlsv1: "TLSv1"
                case .tlsv11: "TLSv1.1"
                case .tlsv12: "TLSv1.2"
                case .tlsv13: "TLSv1.3"
                }
            version.withLockedValue { $0 = name }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
