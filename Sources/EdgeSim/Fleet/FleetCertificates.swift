import EdgeDNS
import EdgeModel
import EdgeProxy
import Foundation

/// The certificates a fleet hands out: a local CA of its own (`ca.pem`, which clients trust with
/// `curl --cacert` or `openssl s_client -CAfile`), a certificate for each application with edge
/// TLS and no files of its own (its name and generated name), and one for each built-in origin
/// with `tls: true` (its host name and addresses).
enum FleetCertificates {
    /// Folder names begin with this and the runner's pid.
    static let folderPrefix = "edgesim-tls-"

    /// Whether anything in the plan serves TLS.
    static func needed(_ plan: FleetPlan) -> Bool {
        plan.applications.contains { $0.tls != .off } || plan.scenario.topology.origins.contains { $0.tls != nil }
    }

    /// The files an origin serves with.
    static func originFiles(_ spec: OriginSpec, in folder: String) -> (certificate: String, key: String)? {
        switch spec.tls {
        case nil: return nil
        case .files(let certificate, let key): return (certificate, key)
        case .issued: return EdgeTLS.issuedFiles(for: "origin-\(spec.name)", in: folder)
        }
    }

    /// Issues a certificate for an application added while the fleet runs, from the CA in `folder`.
    static func issue(_ app: Application, zones: EdgeZones, into folder: URL) throws {
        guard app.tlsSettings.needsIssuedCertificate else { return }
        try issue(app, by: try LocalCA.load(from: folder), zones: zones, into: folder)
    }

    private static func issue(_ app: Application, by ca: LocalCA, zones: EdgeZones, into folder: URL) throws {
        let names = Array(Set([app.dns.name, zones.generatedHost(app).text])).sorted()
        try ca.issue(names: names).write(to: folder, name: app.id)
    }

    /// Writes the CA and every certificate the plan needs into `folder` (the CA is reused when
    /// one is there already).
    static func issue(_ plan: FleetPlan, zones: EdgeZones, into folder: URL) throws {
        let ca = try (try? LocalCA.load(from: folder)) ?? LocalCA(name: "edgesim fleet CA")
        try ca.write(to: folder)
        for app in plan.applications where app.tls != .off && app.tlsSettings.needsIssuedCertificate {
            try issue(app, by: ca, zones: zones, into: folder)
        }
        for spec in plan.scenario.topology.origins where spec.tls == .issued {
            let addresses = Set(plan.originAddresses([spec.name]) + [plan.originListenAddress(spec.name)].compactMap { $0 })
            // As a real origin behind the edge carries the public names it serves (strict mode
            // checks the name the client asked for), and its own host name.
            let served = plan.scenario.applications.filter { app in
                guard case .direct(let origins) = app.origin else { return false }
                return origins.contains { $0.host == .topologyHost(spec.name) }
            }.map(\.dns.name)
            let names = Array(Set(served + [plan.hostName(spec.name, in: zones).text])).sorted()
            try ca.issue(names: names, addresses: Array(addresses).sorted { "\($0)" < "\($1)" }).write(
                to: folder, name: "origin-\(spec.name)")
        }
    }
}
