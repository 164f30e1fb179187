import EdgeModel

/// The decisions of one client TCP connection, without sockets: each event the handler sees
/// returns what to do next. accepted → (filtered) → [readingHello] → resolving → connecting
/// (each candidate in turn) → [securingClient] → relaying → closed. The bracketed states are
/// edge TLS: the client's ClientHello is read first (its SNI and ALPN go to a TLS origin), the
/// origin leg is opened (and secured, for full and strict) by the connector, and only then is
/// the client answered, with the protocol the origin chose. The origin leg's header is written
/// by the connector before the two sides are joined; half-closes are the relay's business.
/// An http or https application instead serves HTTP once the client is (secured and) accepted:
/// accepted → [readingHello → securingClient] → servingHTTP, the origin opened per request.
struct TCPSessionStateMachine {
    enum State: Equatable {
        case accepted
        case readingHello
        case resolving
        case connecting(remaining: ArraySlice<Endpoint>, lastFailure: Failure?, direct: Bool)
        /// Answering the client's handshake; the origin leg is open, except for HTTP.
        case securingClient(origin: Endpoint?)
        case relaying(origin: Endpoint)
        case servingHTTP
        case closed
    }

    struct Failure: Equatable, Error {
        var status: StatusCode
        var message: String
    }

    enum Outcome: Equatable {
        case filtered(rule: String?)
        case resolveFailed(Failure)
        case originFailed(Failure)
        /// A handshake failed on either leg, or the application's TLS cannot be set up.
        case tlsFailed(Failure, origin: Endpoint?)
    }

    enum Action: Equatable {
        /// Read the client's ClientHello.
        case readHello
        /// Ask the origin pool for candidates.
        case resolve
        /// Open the origin leg to this endpoint, the way the application's routing says.
        case connect(Endpoint)
        /// Open the origin leg to this endpoint straight, whatever the routing says (a relayed
        /// attempt failed).
        case connectDirect(Endpoint)
        /// The origin leg is ready (nil: an HTTP application, whose origin comes per request):
        /// answer the client's TLS handshake.
        case secureClient(origin: Endpoint?)
        /// Serve the connection as HTTP, forwarding each request.
        case serveHTTP
        /// Both legs are ready: join the two sides.
        case join(origin: Endpoint)
        /// Close the client with this outcome recorded.
        case close(Outcome)
        /// The origin leg opened after the client went: close it.
        case closeOrigin
        case none
    }

    private(set) var state: State = .accepted
    /// Whether the client speaks TLS to the edge.
    let edgeTLS: Bool
    /// Whether the application is http or https.
    let http: Bool
    /// The client's ClientHello, once read.
    private(set) var hello: TLSClientHello?

    init(edgeTLS: Bool = false, http: Bool = false) {
        self.edgeTLS = edgeTLS
        self.http = http
    }

    /// The access rules have spoken. `tlsUnusable` is set when the application's TLS could not
    /// be set up, so an allowed client cannot be served.
    mutating func accepted(allowed: Bool, rule: String?, tlsUnusable: Failure? = nil) -> Action {
        guard state == .accepted else { return .none }
        guard allowed else {
            state = .closed
            return .close(.filtered(rule: rule))
        }
        if let tlsUnusable {
            state = .closed
            return .close(.tlsFailed(tlsUnusable, origin: nil))
        }
        if edgeTLS {
            state = .readingHello
            return .readHello
        }
        if http {
            state = .servingHTTP
            return .serveHTTP
        }
        state = .resolving
        return .resolve
    }

    mutating func helloRead(_ hello: TLSClientHello) -> Action {
        guard state == .readingHello else { return .none }
        self.hello = hello
        if http {
            state = .securingClient(origin: nil)
            return .secureClient(origin: nil)
        }
        state = .resolving
        return .resolve
    }

    mutating func helloFailed(_ failure: Failure) -> Action {
        guard state == .readingHello else { return .none }
        state = .closed
        return .close(.tlsFailed(failure, origin: nil))
    }

    mutating func resolved(_ candidates: [Endpoint]) -> Action {
        guard state == .resolving else { return .none }
        return next(candidates[...], lastFailure: nil)
    }

    mutating func resolveFailed(_ failure: Failure) -> Action {
        guard state == .resolving else { return .none }
        state = .closed
        return .close(.resolveFailed(failure))
    }

    /// The attempt at the first remaining candidate failed: the next one, or give up. An attempt
    /// through other edges is tried once more straight before moving on: a relay that died must
    /// not cost the connection.
    mutating func connectFailed(_ failure: Failure, relayed: Bool = false) -> Action {
        guard case .connecting(let remaining, _, let direct) = state else { return .none }
        if relayed, !direct, let origin = remaining.first {
            state = .connecting(remaining: remaining, lastFailure: failure, direct: true)
            return .connectDirect(origin)
        }
        return next(remaining.dropFirst(), lastFailure: failure)
    }

    /// The origin leg opened but its TLS handshake failed, or its certificate was refused:
    /// another address of the same origin would present the same, so the connection ends.
    mutating func originHandshakeFailed(_ failure: Failure) -> Action {
        guard case .connecting(let remaining, _, _) = state else { return .none }
        state = .closed
        return .close(.tlsFailed(failure, origin: remaining.first))
    }

    mutating func connected() -> Action {
        switch state {
        case .connecting(let remaining, _, _):
            guard let origin = remaining.first else { return .none }
            if edgeTLS {
                state = .securingClient(origin: origin)
                return .secureClient(origin: origin)
            }
            state = .relaying(origin: origin)
            return .join(origin: origin)
        case .closed: return .closeOrigin
        default: return .none
        }
    }

    mutating func clientSecured() -> Action {
        guard case .securingClient(let origin) = state else { return .none }
        guard let origin else {
            state = .servingHTTP
            return .serveHTTP
        }
        state = .relaying(origin: origin)
        return .join(origin: origin)
    }

    mutating func clientHandshakeFailed(_ failure: Failure) -> Action {
        guard case .securingClient(let origin) = state else { return .none }
        state = .closed
        return .close(.tlsFailed(failure, origin: origin))
    }

    /// The client went away. Whatever is under way stops; an origin leg that opens later is closed.
    /// A client that leaves in the middle of its TLS handshake is a TLS error.
    mutating func clientClosed() -> Action {
        defer { state = .closed }
        switch state {
        case .readingHello:
            return .close(.tlsFailed(.init(status: .clientHandshakeFailed, message: "client: closed before its ClientHello"), origin: nil))
        case .securingClient(let origin):
            return .close(
                .tlsFailed(.init(status: .clientHandshakeFailed, message: "client: closed during the TLS handshake"), origin: origin))
        default:
            return .none
        }
    }

    private mutating func next(_ remaining: ArraySlice<Endpoint>, lastFailure: Failure?) -> Action {
        guard let origin = remaining.first else {
            state = .closed
            return .close(.originFailed(lastFailure ?? Failure(status: .originRefused, message: "no origin")))
        }
        state = .connecting(remaining: remaining, lastFailure: lastFailure, direct: false)
        return .connect(origin)
    }
}
