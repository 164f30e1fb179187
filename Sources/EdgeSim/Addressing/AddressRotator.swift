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
    }

    public let applications: [Application]
    public let book: AddressBook
    public let zones: EdgeZones
    public let store: ZoneStore
    public let nodes: [EdgeNode]
    public let drain: Duration
    private let log = Mutex<[Rotation]>([])
    private let draining = Mutex<[Task<Void, Never>]>([])

    public init(applications: [Application], book: AddressBook, zones: EdgeZones, store: ZoneStore, nodes: [EdgeNode], drain: Duration) {
        self.applications = applications
        self.book = book
        self.zones = zones
        self.store = store
        self.nodes = nodes
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
            for node in nodes { _ = try await node.serve(app.id, on: book.addresses(of: app)) }
        }
        store.replace(with: zones.build(applications, book: book))
    }

    /// Rotates one application's addresses; returns once DNS publishes the new ones. The old
    /// ones are retired in the background after the drain period (`waitForRetirements`).
    @discardableResult
    public func rotate(_ appID: String) async throws -> Rotation {
        guard let app = applications.first(where: { $0.id == appID }) else {
            throw UnknownApplication(description: "no application has id '\(appID)'")
        }
        let (old, new) = try book.rotate(app)
        for node in nodes { _ = try await node.serve(app.id, on: new.all) }
        let servedAt = Date().timeIntervalSince1970
        store.replace(with: zones.build(applications, book: book))
        let rotation = Rotation(
            app: app.id, old: old.all.map(\.description), new: new.all.map(\.description), servedAt: servedAt,
            publishedAt: Date().timeIntervalSince1970)
        let index = log.withLock { log in
            log.append(rotation)
            return log.count - 1
        }
        let task = Task {
            try? await Task.sleep(for: drain)
            for node in nodes {
                for address in old.all { await node.retire(app.id, address: address) }
            }
            book.release(old.all)
            log.withLock { $0[index].retiredAt = Date().timeIntervalSince1970 }
        }
        draining.withLock { $0.append(task) }
        return rotation
    }

    /// Waits until every rotation so far has retired its old addresses.
    public func waitForRetirements() async {
        for task in draining.withLock({ $0 }) { await task.value }
    }
}
