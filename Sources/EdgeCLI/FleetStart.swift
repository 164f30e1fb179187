import ArgumentParser
import EdgeModel
import EdgeNet
import EdgeSim

/// One line for a file of another kind than the command takes, saying what to run instead; nil
/// when the file is of the expected kind (or unclear, so its own errors are the better answer).
func wrongKind(_ path: String, expected: ConfigKind) -> String? {
    guard let kind = ConfigLoader().evidentKind(of: path), kind != expected else { return nil }
    let what: String
    switch kind {
    case .topology:
        what =
            "a topology: bring it up with `edgesim up \(path) --apps APPS.yaml`, or name it in a scenario's `topology:` and `edgesim run` that"
    case .scenario:
        what = "a scenario: run it with `edgesim run \(path)`"
    case .applications:
        what =
            "an applications file: serve it with `edgesim up TOPOLOGY --apps \(path)` or `edgesim node --apps \(path)`, or name it in a scenario's `app_files:`"
    }
    return "error: \(path) is \(what) (this command takes a \(expected.rawValue))"
}

/// What `run` and `up` check before they start a fleet: the scenario reads, the mode is
/// possible for this user, its ports may be bound, and an earlier run's leftovers are gone.
enum FleetStart {
    /// The scenario, the mode (`nil` is the scenario's own) and the DNS port to use; exit status
    /// 2 with a message for anything that would stop the run.
    static func prepare(scenario path: String, mode: RunMode?, dnsPort: UInt16?) throws -> (Scenario, FleetPlan.Mode, UInt16) {
        if let wrong = wrongKind(path, expected: .scenario) {
            printError(wrong)
            throw ExitCode(2)
        }
        let scenario: Scenario
        do {
            let loaded = try ConfigLoader().loadScenario(path)
            for warning in loaded.warnings { printError(warning.description) }
            scenario = loaded.value
        } catch {
            for issue in error.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        let (resolved, port) = try prepare(scenario, mode: mode, dnsPort: dnsPort)
        return (scenario, resolved, port)
    }

    /// The same for a scenario already read (`up`'s topology and applications).
    static func prepare(_ scenario: Scenario, mode: RunMode?, dnsPort: UInt16?) throws -> (FleetPlan.Mode, UInt16) {
        let resolved = HostChecks.resolve(mode ?? scenario.mode)
        if resolved == .netns, let refusal = HostChecks.netnsRefusal {
            printError("error: \(refusal)")
            throw ExitCode(2)
        }
        if (mode ?? scenario.mode) == .auto { printError("mode: \(HostChecks.autoReason)") }
        let port = dnsPort ?? (HostChecks.isRoot ? 53 : 5300)
        let problems = HostChecks.portProblems(scenario, dnsPort: port)
        guard problems.isEmpty else {
            for problem in problems { printError("error: \(problem)") }
            throw ExitCode(2)
        }
        // Inside a private network the machine's namespaces and processes are not this run's to clean.
        if !PrivateNetwork.isInside {
            for leftover in Leftovers.clean() { printError("removed leftover of an earlier run: \(leftover)") }
        }
        return (resolved, port)
    }
}
