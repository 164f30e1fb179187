import EdgeModel

/// The decisions of one client TCP connection, without sockets: each event the handler sees
/// returns what to do next. accepted → (filtered) → resolving → connecting (each candidate in
/// turn) → relaying → closed; the origin leg's header is written by the connector before the
/// two sides are joined, and half-closes are the relay's business once joined.
struct TCPSessionStateMachine {
    enum State: Equatable {
        case accepted
        case resolving
        case connecting(remaining: ArraySlice<Endpoint>, lastFailure: Failure?, direct: Bool)
        case relaying(origin: Endpoint)
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
    }

    enum Action: Equatable {
        /// Ask the origin pool for candidates.
        case resolve
        /// Open the origin leg to this endpoint, the way the application's routing says.
        case connect(Endpoint)
        /// Open the origin leg to this endpoint straight, whatever the routing says (a relayed
        /// attempt failed).
        case connectDirect(Endpoint)
        /// The origin leg is ready: join the two sides.
        case join(origin: Endpoint)
        /// Close the client with this outcome recorded.
        case close(Outcome)
        /// The origin leg opened after the client went: close it.
        case closeOrigin
        case none
    }

    private(set) var state: State = .accepted

    /// The access rules have spoken.
    mutating func accepted(allowed: Bool, rule: String?) -> Action {
        guard state == .accepted else { return .none }
        guard allowed else {
            state = .closed
            return .close(.filtered(rule: rule))
        }
        state = .resolving
        return .resolve
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

    mutating func connected() -> Action {
        switch state {
        case .connecting(let remaining, _, _):
            guard let origin = remaining.first else { return .none }
            state = .relaying(origin: origin)
            return .join(origin: origin)
        case .closed: return .closeOrigin
        default: return .none
        }
    }

    /// The client went away. Whatever is under way stops; an origin leg that opens later is closed.
    mutating func clientClosed() -> Action {
        state = .closed
        return .none
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
