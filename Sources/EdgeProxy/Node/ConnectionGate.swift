import Synchronization

/// How many TCP connections a node holds open, in all and per application, against its
/// limits. A connection over either limit is refused as it is accepted.
public final class ConnectionGate: Sendable {
    public let nodeLimit: Int
    public let applicationLimit: Int
    private let open = Mutex<(total: Int, byApplication: [String: Int])>((0, [:]))

    public init(nodeLimit: Int, applicationLimit: Int) {
        self.nodeLimit = nodeLimit
        self.applicationLimit = applicationLimit
    }

    /// Takes a place for a connection of `app`; nil when it may open, else which limit it met.
    public func enter(_ app: String) -> String? {
        open.withLock { open in
            if open.total >= nodeLimit { return "the node holds \(open.total) connections (tcp_connections \(nodeLimit))" }
            let mine = open.byApplication[app, default: 0]
            if mine >= applicationLimit {
                return "\(app) holds \(mine) connections (tcp_connections_per_app \(applicationLimit))"
            }
            open.total += 1
            open.byApplication[app] = mine + 1
            return nil
        }
    }

    public func leave(_ app: String) {
        open.withLock { open in
            open.total -= 1
            open.byApplication[app, default: 1] -= 1
        }
    }

    public var total: Int { open.withLock { $0.total } }
}
