import ArgumentParser
import EdgeModel
import EdgeSim
import Foundation

/// The fleet plan a node process works out for itself, the same way its runner did: from the
/// scenario, or from the topology and applications `edgesim up` was given.
enum FleetNodePlan {
    /// The plan; exit status 2 with the problems printed when the files do not read.
    static func load(scenario: String?, topology: String?, apps: String?, mode: String) throws -> FleetPlan {
        let loader = ConfigLoader()
        let loaded: Loaded<Scenario>
        do {
            if let scenario {
                loaded = try loader.loadScenario(scenario)
            } else {
                let path = URL(fileURLWithPath: topology!).standardizedFileURL.path
                let loadedTopology = try loader.loadTopology(path)
                let loadedApps = try apps.map { try loader.loadApplications($0, topologyHosts: true) }
                loaded = Loaded(
                    value: Scenario(topology: loadedTopology.value, topologyPath: path, applications: loadedApps?.value ?? []),
                    warnings: loadedTopology.warnings + (loadedApps?.warnings ?? []))
            }
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        do {
            return try FleetPlan(scenario: loaded.value, mode: FleetPlan.Mode(rawValue: mode)!)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
    }
}
