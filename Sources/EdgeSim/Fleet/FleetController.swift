import EdgeDNS
import EdgeModel
import Foundation

/// The one place a running fleet is driven from: signals, the HTTP API and scripts call it to
/// read the fleet's state and change it (applications, rotations, nodes, links, origins). It
/// keeps the applications as they were given (with topology host names), with when each was
/// made and last changed, and writes them to `applicationsFile` after every change so other
/// commands see the fleet as it is.
public actor FleetController {
    /// An application as the API shows it.
    public struct ApplicationRecord: Sendable {
        public var app: Application
        public var createdOn: Date
        public var modifiedOn: Date
    }

    public enum Failure: Error, CustomStringConvertible {
        /// The body is not a valid application (the same messages as for a file).
        case invalid([ConfigIssue])
        case notFound(String)
        /// The fleet could not carry the change out.
        case failed(String)

        public var description: String {
            switch self {
            case .invalid(let issues): return issues.map(\.description).joined(separator: "\n")
            case .notFound(let what): return what
            case .failed(let why): return why
            }
        }
    }

    nonisolated public let fleet: Fleet
    private var records: [ApplicationRecord]
    /// The DNS name of every application the fleet has served, deleted ones too, so their
    /// events are still counted in their zone.
    public private(set) var namesEverServed: [String: String] = [:]
    private let applicationsFile: String?
    private let tell: @Sendable (String) -> Void
    /// What was done through the controller, when (seconds since the epoch), newest last.
    public private(set) var changes: [(time: Double, text: String)] = []

    /// `given`: the applications the fleet started with, as read from their file.
    public init(fleet: Fleet, given: [Application], applicationsFile: String?, say: @escaping @Sendable (String) -> Void) {
        self.fleet = fleet
        let now = Date()
        records = given.map { ApplicationRecord(app: $0, createdOn: now, modifiedOn: now) }
        namesEverServed = Dictionary(given.map { ($0.id, $0.dns.name) }, uniquingKeysWith: { first, _ in first })
        self.applicationsFile = applicationsFile
        self.tell = say
    }

    /// Says what was done and keeps it for the timeline (the last 1,000).
    private func say(_ text: String) {
        changes.append((Date().timeIntervalSince1970, text))
        if changes.count > 1000 { changes.removeFirst(changes.count - 1000) }
        tell(text)
    }

    // MARK: Applications

    public var applications: [ApplicationRecord] { records }

    public func application(_ id: String) -> ApplicationRecord? { records.first { $0.app.id == id } }

    /// The addresses an application answers on now.
    public func addresses(of id: String) -> [IPAddress] { fleet.book.addresses(ofID: id) }

    /// Adds an application from a request body (a Spectrum application object). Without an `id`
    /// it gets a new one, as Spectrum gives. `zone`: its name must lie within it.
    public func create(_ body: [UInt8], zone: DNSName?) async throws(Failure) -> ApplicationRecord {
        let hasID = Self.object(body)?["id"] != nil
        var app = try decode(body, alongside: records.map(\.app), zone: zone)
        if !hasID { app.id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }
        try await put(app)
        let now = Date()
        let record = ApplicationRecord(app: app, createdOn: now, modifiedOn: now)
        records.append(record)
        namesEverServed[app.id] = app.dns.name
        saved()
        say("application \(app.id) added: \(app.dns.name) \(app.edge)")
        return record
    }

    /// Replaces an application's definition (the body is the whole object, as Spectrum's PUT).
    public func update(_ id: String, _ body: [UInt8], zone: DNSName?) async throws(Failure) -> ApplicationRecord {
        guard let index = records.firstIndex(where: { $0.app.id == id }) else { throw .notFound("no application has id '\(id)'") }
        if let given = Self.object(body)?["id"] as? String, given != id {
            throw .invalid([ConfigIssue("is '\(given)' but the request is for '\(id)'", field: "id", at: Self.source)])
        }
        var app = try decode(body, alongside: records.map(\.app).filter { $0.id != id }, zone: zone)
        app.id = id
        try await put(app)
        records[index].app = app
        records[index].modifiedOn = Date()
        namesEverServed[app.id] = app.dns.name
        saved()
        say("application \(id) changed: \(app.dns.name) \(app.edge)")
        return records[index]
    }

    public func delete(_ id: String) async throws(Failure) {
        guard let index = records.firstIndex(where: { $0.app.id == id }) else { throw .notFound("no application has id '\(id)'") }
        await fleet.remove(id)
        records.remove(at: index)
        saved()
        say("application \(id) deleted")
    }

    /// Rotates the addresses of one application, or of every dynamic one.
    @discardableResult
    public func rotate(_ id: String? = nil) async throws(Failure) -> [AddressRotator.Rotation] {
        let ids = id.map { [$0] } ?? records.map(\.app).filter { if case .dynamic = $0.edgeIPs { true } else { false } }.map(\.id)
        if let id, application(id) == nil { throw .notFound("no application has id '\(id)'") }
        var done: [AddressRotator.Rotation] = []
        for id in ids { done.append(try await rotate(id, drain: nil)) }
        return done
    }

    // MARK: Nodes, links, origins

    /// Stops, kills, starts, restarts, freezes or thaws an edge node (a timeline's `node` step).
    public func node(_ step: HostStep) async throws(Failure) {
        let name = step.name
        guard fleet.nodes[name] != nil else { throw .notFound("no edge node '\(name)'") }
        do {
            switch step.action {
            case .kill: await fleet.stopNode(name, kill: true)
            case .stop: await fleet.stopNode(name, kill: false)
            case .start: try await fleet.startNode(name)
            case .restart:
                await fleet.stopNode(name, kill: false)
                try await fleet.startNode(name)
            case .freeze: await fleet.freezeNode(name, true)
            case .thaw: await fleet.freezeNode(name, false)
            case .blackhole, .reset, .slowRead:
                throw Failure.invalid([ConfigIssue("\(step.action.rawValue) is for origins", at: Self.source)])
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .failed("node \(name): \(error)")
        }
        say("node \(name) \(Self.past(step.action))")
    }

    public func stopNode(_ name: String, kill: Bool) async throws(Failure) {
        try await node(HostStep(name: name, action: kill ? .kill : .stop))
    }

    public func startNode(_ name: String) async throws(Failure) {
        try await node(HostStep(name: name, action: .start))
    }

    /// Cuts, reshapes or restores a link (a timeline's `link` step).
    public func change(_ step: LinkStep) async throws(Failure) {
        do {
            try await fleet.change(step)
        } catch {
            throw .failed("link \(step.a)-\(step.b): \(error)")
        }
        switch step.change {
        case .cut: say("link \(step.a)-\(step.b) cut")
        case .restore: say("link \(step.a)-\(step.b) restored")
        case .set(let shape): say("link \(step.a)-\(step.b) set to \(shape.latency * 2) round trip, \(Int(shape.loss * 100))% loss")
        }
    }

    /// Origins that misbehave on purpose (blackhole, reset, slow reads), so `start` puts them right.
    private var faulted: Set<String> = []

    /// Stops, starts, restarts an origin or makes it misbehave (a timeline's `origin` step).
    /// After a fault, start means behaving again; after a stop, listening again. False when
    /// there was nothing to start.
    @discardableResult
    public func origin(_ step: HostStep) async throws(Failure) -> Bool {
        let name = step.name
        guard fleet.origins[name] != nil else { throw .notFound("no origin '\(name)'") }
        var started = true
        do {
            switch step.action {
            case .kill, .stop, .freeze: await fleet.stopOrigin(name)
            case .blackhole:
                faulted.insert(name)
                fleet.setOriginFault(name, .silent)
            case .reset:
                faulted.insert(name)
                fleet.setOriginFault(name, .reset)
            case .slowRead:
                faulted.insert(name)
                fleet.setOriginFault(name, .slowRead(bytesPerSecond: Int(clamping: step.readRate ?? 65_536)))
            case .start, .thaw:
                if faulted.remove(name) != nil {
                    fleet.setOriginFault(name, .none)
                } else {
                    started = try await fleet.startOrigin(name)
                }
            case .restart:
                await fleet.stopOrigin(name)
                try await fleet.startOrigin(name)
            }
        } catch {
            throw .failed("origin \(name): \(error)")
        }
        say("origin \(name) \(Self.past(step.action))")
        return started
    }

    public func stopOrigin(_ name: String) async throws(Failure) {
        try await origin(HostStep(name: name, action: .stop))
    }

    public func startOrigin(_ name: String) async throws(Failure) {
        try await origin(HostStep(name: name, action: .start))
    }

    /// Points an origin name at other origins (a timeline's `origin_name` step).
    public func originName(_ step: OriginNameStep) {
        fleet.setOriginName(step)
        say("origin name \(step.name) → \(step.origins.joined(separator: ", "))")
    }

    /// Rotates one application's addresses with its own drain; `afterRetirement` runs once the
    /// old addresses stopped accepting (a timeline's `rotate` step).
    @discardableResult
    public func rotate(
        _ id: String, drain: Duration?, afterRetirement: (@Sendable (AddressRotator.Rotation) async -> Void)? = nil
    ) async throws(Failure) -> AddressRotator.Rotation {
        let rotation: AddressRotator.Rotation
        do {
            rotation = try await fleet.rotator.rotate(id, drain: drain, afterRetirement: afterRetirement)
        } catch {
            throw .failed("\(error)")
        }
        say("rotated \(id): \(rotation.old.joined(separator: ", ")) → \(rotation.new.joined(separator: ", "))")
        return rotation
    }

    static func past(_ action: HostStep.Action) -> String {
        switch action {
        case .stop: return "stopped"
        case .start: return "started"
        case .restart: return "restarted"
        case .kill: return "killed"
        case .freeze: return "frozen"
        case .thaw: return "thawed"
        case .blackhole: return "blackholing"
        case .reset: return "resetting connections"
        case .slowRead: return "reading slowly"
        }
    }

    // MARK: Helpers

    static let source = SourceLocation(file: "request body")

    private func decode(_ body: [UInt8], alongside: [Application], zone: DNSName?) throws(Failure) -> Application {
        let app: Application
        do {
            app = try ConfigLoader().decodeApplication(body, source: Self.source.file, alongside: alongside, topologyHosts: true)
        } catch {
            throw .invalid(error.issues)
        }
        if let zone, let name = DNSName(app.dns.name), !name.isSubdomain(of: zone) {
            throw .invalid([ConfigIssue("\(app.dns.name) is not within the zone \(zone.text)", field: "dns.name", at: Self.source)])
        }
        do {
            _ = try fleet.plan.served(app)
        } catch {
            throw .invalid([ConfigIssue(error.description, at: Self.source)])
        }
        return app
    }

    private func put(_ app: Application) async throws(Failure) {
        do {
            try await fleet.define(app)
        } catch {
            throw .failed("\(error)")
        }
    }

    private func saved() {
        guard let applicationsFile else { return }
        do {
            try RunningFleet.writeApplications(records.map(\.app), to: applicationsFile)
        } catch {
            tell("cannot write \(applicationsFile): \(error)")
        }
    }

    private static func object(_ body: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}
