import EdgeModel
import Synchronization

/// The addresses each application holds now: one IPv4 and/or one IPv6 address per dynamic
/// application (by its `edge_ips.connectivity`), or its static addresses.
public final class AddressBook: Sendable {
    public struct Holding: Sendable, Hashable {
        public var ipv4: IPAddress?
        public var ipv6: IPAddress?
        public var all: [IPAddress] { [ipv4, ipv6].compactMap { $0 } }
    }

    public struct ExhaustedPool: Error, CustomStringConvertible {
        public var description: String
    }

    public struct StaticAddresses: Error, CustomStringConvertible {
        public var description: String
    }

    private struct State {
        var v4: AddressPool
        var v6: AddressPool
        var holdings: [String: Holding] = [:]
        var statics: [String: [IPAddress]] = [:]
    }

    private let state: Mutex<State>

    public init(ipv4: IPPrefix, ipv6: IPPrefix) {
        state = Mutex(State(v4: AddressPool(ipv4), v6: AddressPool(ipv6)))
    }

    /// Gives every application its first addresses.
    public func assign(_ apps: [Application]) throws {
        try state.withLock { state in
            for app in apps {
                switch app.edgeIPs {
                case .static(let ips):
                    for ip in ips { _ = ip.isIPv4 ? state.v4.reserve(ip) : state.v6.reserve(ip) }
                    state.statics[app.id] = ips
                case .dynamic(let connectivity):
                    state.holdings[app.id] = try Self.fresh(connectivity, &state, app: app.id)
                }
            }
        }
    }

    /// The addresses an application answers on now.
    public func addresses(of app: Application) -> [IPAddress] { addresses(ofID: app.id) }

    public func addresses(ofID appID: String) -> [IPAddress] {
        state.withLock { state in state.statics[appID] ?? state.holdings[appID]?.all ?? [] }
    }

    public func holding(_ appID: String) -> Holding? { state.withLock { $0.holdings[appID] } }

    /// New addresses for a dynamic application; the old ones stay allocated until `release`.
    public func rotate(_ app: Application) throws -> (old: Holding, new: Holding) {
        try state.withLock { state in
            guard case .dynamic(let connectivity) = app.edgeIPs, let old = state.holdings[app.id] else {
                throw StaticAddresses(description: "\(app.id) has static addresses, which do not rotate")
            }
            let new = try Self.fresh(connectivity, &state, app: app.id)
            state.holdings[app.id] = new
            return (old, new)
        }
    }

    /// Forgets an application and returns its addresses to the pools; returns them.
    @discardableResult
    public func forget(_ appID: String) -> [IPAddress] {
        state.withLock { state in
            let addresses = state.statics.removeValue(forKey: appID) ?? state.holdings.removeValue(forKey: appID)?.all ?? []
            for address in addresses { address.isIPv4 ? state.v4.release(address) : state.v6.release(address) }
            return addresses
        }
    }

    /// Returns drained addresses to their pools.
    public func release(_ addresses: [IPAddress]) {
        state.withLock { state in
            for address in addresses { address.isIPv4 ? state.v4.release(address) : state.v6.release(address) }
        }
    }

    private static func fresh(_ connectivity: EdgeIPs.Connectivity, _ state: inout State, app: String) throws -> Holding {
        var holding = Holding()
        if connectivity != .ipv6 {
            guard let address = state.v4.allocate() else {
                throw ExhaustedPool(description: "IPv4 pool \(state.v4.prefix) is exhausted (app \(app))")
            }
            holding.ipv4 = address
        }
        if connectivity != .ipv4 {
            guard let address = state.v6.allocate() else {
                throw ExhaustedPool(description: "IPv6 pool \(state.v6.prefix) is exhausted (app \(app))")
            }
            holding.ipv6 = address
        }
        return holding
    }
}
