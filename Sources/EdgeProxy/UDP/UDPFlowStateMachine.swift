import EdgeModel

/// The decisions of one client's UDP flow, without sockets: opening its origin socket (client
/// datagrams wait, up to a limit), open (datagrams go straight through), closed. The listener
/// handler feeds it what happens and carries out what it returns.
struct UDPFlowStateMachine {
    enum State: Equatable {
        case opening(queued: Int)
        case open
        case closed
    }

    enum Action: Equatable {
        /// Send the datagram to the origin socket now.
        case forward
        /// Hold the datagram until the origin socket is open.
        case queue
        /// Drop the datagram: too many are waiting already, or the flow is over.
        case drop
        /// The origin socket is open: send what waits, record the flow as connected.
        case flush
        /// Hand a reply to the client.
        case deliver
        /// Close the flow: its origin socket if any, and record how it ended (nil: nothing to
        /// record, since it never reached its origin).
        case close(StatusCode?)
        case none
    }

    let pendingLimit: Int
    private(set) var state: State = .opening(queued: 0)
    /// Whether the origin ever answered, which decides how an idle flow ends.
    private(set) var answered = false

    init(pendingLimit: Int) {
        self.pendingLimit = pendingLimit
    }

    mutating func clientDatagram() -> Action {
        switch state {
        case .opening(let queued) where queued < pendingLimit:
            state = .opening(queued: queued + 1)
            return .queue
        case .opening, .closed: return .drop
        case .open: return .forward
        }
    }

    mutating func originOpened() -> Action {
        switch state {
        case .opening:
            state = .open
            return .flush
        // Opened after the flow ended (evicted, listener gone): the late socket is closed.
        case .open, .closed: return .close(nil)
        }
    }

    /// Resolving or opening the origin failed: the failure is recorded where it happened.
    mutating func originFailed() -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close(nil)
    }

    mutating func originReply() -> Action {
        guard state == .open else { return .none }
        answered = true
        return .deliver
    }

    /// No datagram either way for the idle timeout.
    mutating func expired() -> Action { end(answered ? .ok : .originNoResponse) }

    /// The table was full and this flow was the least recently used.
    mutating func evicted() -> Action { end(.flowEvicted) }

    /// The edge port stopped listening (its address retired, the node stopping).
    mutating func listenerClosed() -> Action { end(.ok) }

    private mutating func end(_ status: StatusCode) -> Action {
        let wasOpen = state == .open
        guard state != .closed else { return .none }
        state = .closed
        return .close(wasOpen ? status : nil)
    }
}
