import ArgumentParser
import EdgeModel
import EdgeSim

/// What `run` and `up` check before they start a fleet: the scenario reads, the mode is
/// possible for this user, its ports may be bound, and an earlier run's leftovers are gone.
enum FleetStart {
    /// The scenario, the mode (`nil` is the scenario's own) and the DNS port to use; exit status
    /// 2 with a message for anything that would stop the run.
    static func prepare(scenario path: String, mode: RunMode?, dnsPort: UInt16?) throws -> (Scenario, FleetPlan.Mode, UInt16) {
        let scenario: Scenario
        do {
            let loaded = try ConfigLoader().loadScenario(path)
            for warning in loaded.warnings { printError(warning.description) }
            scenario = loaded.value
        } catch {
            for issue in error.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        let resolved = HostChecks.resolve(mode ?? scenario.mode)
        if resolved == .netns, !HostChecks.isRoot {
            printError("error: netns mode needs root (network namespaces and TUN devices); use --mode loopback")
            throw ExitCode(2)
        }
        let port = dnsPort ?? (HostChecks.isRoot ? 53 : 5300)
        let problems = HostChecks.portProblems(scenario, dnsPort: port)
        guard problems.isEmpty else {
            for problem in problems { printError("error: \(problem)") }
            throw ExitCode(2)
        }
        for leftover in Leftovers.clean() { printError("removed leftover of an earlier run: \(leftover)") }
        return (scenario, resolved, port)
    }
}
