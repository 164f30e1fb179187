import EdgeModel
import EdgePcap
import EdgeProxy

/// Validates configuration files the way a run would read them, including what the model alone
/// cannot check: that the captures a scenario replays open in libpcap, decode, and hold flows
/// for the step's applications.
public struct FileValidator: Sendable {
    public var loader: ConfigLoader

    public init(loader: ConfigLoader = ConfigLoader()) {
        self.loader = loader
    }

    public func validate(_ path: String, as kind: ConfigKind? = nil) -> ValidationResult {
        var result = loader.validate(path, as: kind)
        guard result.isValid else { return result }
        if result.kind == .applications, let apps = try? loader.loadApplications(path).value {
            result.issues += Self.tlsProblems(apps)
        }
        guard result.kind == .scenario, let scenario = try? loader.loadScenario(path).value else {
            return result
        }
        result.issues += Self.tlsProblems(scenario.applications)
        for timed in scenario.timeline {
            guard case .replay(let replay) = timed.step else { continue }
            do {
                let (capture, plan) = try ReplayPlan.prepare(replay, applications: scenario.applications)
                for problem in capture.problems.prefix(10) {
                    result.issues.append(
                        ConfigIssue("\(capture.file): \(problem)", field: "timeline.replay.pcap", at: timed.location, severity: .warning))
                }
                for (reason, count) in plan.skipped.sorted(by: { $0.key < $1.key }) {
                    result.issues.append(
                        ConfigIssue(
                            "\(count) flows of \(capture.file) left out: \(reason)", field: "timeline.replay", at: timed.location,
                            severity: .warning))
                }
            } catch {
                result.issues.append(ConfigIssue(error.description, field: "timeline.replay.pcap", at: timed.location))
            }
        }
        return result
    }

    /// Certificate and key files that cannot serve, read as a node would read them.
    static func tlsProblems(_ apps: [Application]) -> [ConfigIssue] {
        apps.filter { $0.tls != .off }.compactMap { app -> ConfigIssue? in
            do throws(TLSConfigurationError) {
                try EdgeTLS.checkOwnFiles(of: app)
                return nil
            } catch {
                return ConfigIssue("application \(app.id): \(error.message)", field: error.field, at: app.location)
            }
        }
    }
}
