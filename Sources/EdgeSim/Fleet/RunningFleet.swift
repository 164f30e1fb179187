import EdgeModel
import Foundation

/// What `edgesim up` leaves in its folder so other commands (`edgesim replay --to`) can find
/// and use the running fleet: its mode, its DNS and the description it was started from.
public struct RunningFleet: Codable, Sendable, Hashable {
    public var pid: Int32
    public var mode: String
    /// The fleet's DNS responder, `address:port`.
    public var dns: String
    /// The topology file it runs.
    public var topology: String
    /// A JSON list of the applications it serves now, rewritten whenever they change.
    public var applications: String
    /// It runs in a private network (a user and network namespace of its own): other commands
    /// enter it to reach the fleet.
    public var privateNetwork: Bool?
    /// Where its HTTP API answers (`http://address:port`), when it serves one.
    public var api: String?

    public init(pid: Int32, mode: String, dns: String, topology: String, applications: String) {
        self.pid = pid
        self.mode = mode
        self.dns = dns
        self.topology = topology
        self.applications = applications
    }

    /// The topology and the applications the fleet serves now, as a scenario with no timeline.
    public func description() throws(ConfigErrors) -> Scenario {
        let loader = ConfigLoader()
        let topology = try loader.loadTopology(self.topology).value
        let applications = try loader.loadApplications(self.applications, topologyHosts: true).value
        return Scenario(topology: topology, topologyPath: self.topology, applications: applications)
    }

    /// Writes the applications file `applications` names.
    public static func writeApplications(_ apps: [Application], to path: String) throws {
        let list = apps.map(\.spectrumObject)
        let data = try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static let fileName = "fleet.json"

    /// Where `edgesim up` with this process id keeps its files.
    public static func folder(of pid: Int32) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-up-\(pid)")
    }

    public func write(to folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: folder.appendingPathComponent(Self.fileName), options: .atomic)
    }

    public struct NotFound: Error, CustomStringConvertible {
        public var description: String
    }

    /// The fleet of `edgesim up` with this process id, or in this folder; it must still run.
    public static func find(_ reference: String) throws(NotFound) -> RunningFleet {
        let folder: URL
        if let pid = Int32(reference) {
            folder = Self.folder(of: pid)
        } else {
            folder = URL(fileURLWithPath: reference)
        }
        let file = folder.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw NotFound(
                description: "no running edgesim up at \(reference): \(file.path) does not exist (give the pid edgesim up printed)")
        }
        guard let fleet = try? JSONDecoder().decode(RunningFleet.self, from: data) else {
            throw NotFound(description: "\(file.path) is not a fleet description edgesim up wrote")
        }
        guard kill(fleet.pid, 0) == 0 else {
            throw NotFound(description: "edgesim up \(fleet.pid) is no longer running")
        }
        return fleet
    }
}
