import EdgeModel
import EdgePcap

/// Validates configuration files the way a run would read them, including what the model alone
/// cannot check: that the captures a scenario replays open in libpcap.
public struct FileValidator: Sendable {
    public var loader: ConfigLoader

    public init(loader: ConfigLoader = ConfigLoader()) {
        self.loader = loader
    }

    public func validate(_ path: String, as kind: ConfigKind? = nil) -> ValidationResult {
        var result = loader.validate(path, as: kind)
        guard result.isValid, result.kind == .scenario, let scenario = try? loader.loadScenario(path).value else {
            return result
        }
        for timed in scenario.timeline {
            guard case .replay(let replay) = timed.step else { continue }
            do {
                let reader = try PcapReader(file: replay.capture)
                guard try reader.verify() > 0 else {
                    result.issues.append(
                        ConfigIssue("capture \(replay.capture) holds no packets", field: "timeline.replay.pcap", at: timed.location))
                    continue
                }
            } catch {
                result.issues.append(ConfigIssue(error.message, field: "timeline.replay.pcap", at: timed.location))
            }
        }
        return result
    }
}
