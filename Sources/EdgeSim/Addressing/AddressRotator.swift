import EdgeDNS
import EdgeModel
import EdgeProxy
import Foundation
import Synchronization

/// Changes applications' addresses make-before-break: the new addresses accept traffic on every
/// edge node before DNS publishes them; DNS switches in one step (the SOA serial goes up); the old
/// addresses keep working for the drain period, then stop accepting and go back to the pool.
public final class AddressRotator: Sendable {
    /// One rotation, with when each stage happened (seconds since the epoch).
    public struct Rotation: Sendable, Hashable, Encodable {
        public var app: String
        public var old: [String]
        public var new: [String]
        /// Every node accepts on the new addresses.
        public var servedAt: Double
        /// DNS answers with the new addresses.
        public var publishedAt: Double
        /// The old addresses stopped accepting; nil while they drain.
        public var retiredAt: Double?

        public init(app: String, old: [String], new: [String], servedAt: Double, publishedAt: Double, retiredAt: Double? = nil) {
            self.app = app
            self.old = old
            self.new = new
            self.servedAt = servedAt
            self.publishedAt = publishedAt
            self.retiredAt = retiredAt
        }
    }

    /// The applications it gives addresses to; `add`, `change` and `remove` change them.
    public var applications: [Application] { table.withLock { $0 } }
    private let table: Mutex<[Application]>
    public let book: AddressBook
    public let zones: EdgeZones
    public let store: ZoneStore
    public let servers: [any AddressServing]
    public let drain: Duration
    private let log = Mutex<[Rotation]>([])
    /// Zones are built and put in place one publication at a time, so a later one never loses
    /// to an earlier one built from older state.
    private let publishing = Mutex(())
    private let draining = Mutex<[Task<Void, Never>]>([])

    public init(
        applications: [Application], book: AddressBook, zones: EdgeZones, store: ZoneStore, servers: [any AddressServing], drain: Duration
    ) {
        self.table = Mutex(applications)
        self.book = book
        self.zones = zones
        self.store = store
        self.servers = servers
        self.drain = drain
    }

    public var rotations: [Rotation] { log.withLock { $0 } }

    public struct UnknownApplication: Error, CustomStringConvertible {
        public var description: String
    }

    /// Assigns first addresses, serves them on every node, then publishes the zones.
    public func start() async throws {
        try book.assign(applications)
        for app in applications {
            for server in servers { try await server.startServing(app.id, on: book.addresses(of: app)) }
        }
        publish()
    }

    /// Gives a new application its first addresses, serves them everywhere, then publishes it.
    public func add(_ app: Application) async throws {
        try book.assign([app])
        table.withLock { $0.append(app) }
        do {
            for server in servers { try await server.startServing(app.id, on: book.addresses(of: app)) }
        } catch {
            await remove(app.id)
            throw error
        }
        publish()
    }

    /// Puts a changed definition in place make-before-break: a dynamic application moves to new
    /// addresses served with the new definition, DNS switches to them, and the old ones drain
    /// as in a rotation. Static addresses cannot move, so they are closed and opened again.
    public func change(_ app: Application, drain: Duration? = nil) async throws {
        guard let old = applications.first(where: { $0.id == app.id }) else {
            throw UnknownApplication(description: "no application has id '\(app.id)'")
        }
        switch (old.edgeIPs, app.edgeIPs) {
        case (.dynamic(let before), .dynamic(let after)) where before == after:
            table.withLock { table in table = table.map { $0.id == app.id ? app : $0 } }
            try await rotate(app.id, drain: drain)
        default:
            await remove(app.id)
            try await add(app)
        }
    }

    /// Takes an application out of DNS, then stops serving it everywhere and frees its addresses.
    public func remove(_ appID: String) async {
        let addresses = book.addresses(ofID: appID)
        table.withLock { $0.removeAll { $0.id == appID } }
        publish()
        for server in servers {
            for address in addresses { await server.stopServing(appID, address: address) }
        }
        book.forget(appID)
    }

    /// Builds the zones from the addresses and origin names as they are now and serves them.
    public func publish() {
        publishing.withLock { _ in store.replace(with: zones.build(applications, book: book)) }
    }

    /// Rotates one application's addresses; returns once DNS publishes the new ones. The old
    /// ones are retired in the background after the drain period (`waitForRetirements`).
    @discardableResult
    public func rotate(
        _ appID: String, drain: Duration? = nil, afterRetirement: (@Sendable (Rotation) async -> Void)? = nil
    ) async throws -> Rotation {
        guard let app = applications.first(where: { $0.id == appID }) else {
            throw UnknownApplication(description: "no application has id '\(appID)'")
        }
        let (old, new) = try book.rotate(app)
        for server in servers { try await server.startServing(app.id, on: new.all) }
        let servedAt = Date().timeIntervalSince1970
        publish()
        let rotation = Rotation(
            app: app.id, old: old.all.map(\.description), new: new.all.map(\.description), servedAt: servedAt,
            publishedAt: Date().timeIntervalSince1970)
        let index = log.withLock { log in
            log.append(rotation)
            return log.count - 1
        }
        let task = Task { [self] in
            try? await Task.sleep(for: drain ?? self.drain)
            for server in servers {
                for address in old.all { await server.stopServing(app.id, address: address) }
            }
            let retired = log.withLock { log in
                log[index].retiredAt = Date().timeIntervalSince1970
                return log[index]
            }
            // Checked before the addresses can be handed out again.
            await afterRetirement?(retired)
            book.release(old.all)
        }
        draining.withLock { $0.append(task) }
        return rotation
    }

    /// Waits until every rotation so far has retired its old addresses.
    public func waitForRetirements() async {
        for task in draining.withLock({ $0 }) { await task.value }
    }
}

/// Something that takes traffic for application addresses: an edge node in this process, a
/// node process, or the fabric in front of the nodes.
public protocol AddressServing: Sendable {
    /// Accepts traffic for the application on these addresses; throws if it cannot.
    func startServing(_ appID: String, on addresses: [IPAddress]) async throws
    /// Stops accepting new traffic on one address; what is already open goes on.
    func stopServing(_ appID: String, address: IPAddress) async
}

extension EdgeNode: AddressServing {
    public func startServing(_ appID: String, on addresses: [IPAddress]) async throws {
        _ = try await serve(appID, on: addresses)
    }

    public func stopServing(_ appID: String, address: IPAddress) async {
        await retire(appID, address: address)
    }
}
