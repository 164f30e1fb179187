import EdgeModel
import EdgeNet
import Foundation

/// What this machine and user allow, checked before a run starts so the run fails early with
/// a message rather than halfway.
public enum HostChecks {
    public static var isRoot: Bool { geteuid() == 0 }

    /// Root of the machine, not only of a private network (where namespaces cannot be named and
    /// TUN devices not opened).
    public static var isMachineRoot: Bool { isRoot && !PrivateNetwork.isInside }

    /// The mode `auto` means here.
    public static func resolve(_ mode: RunMode) -> FleetPlan.Mode {
        switch mode {
        case .loopback: return .loopback
        case .netns: return .netns
        case .auto: return isMachineRoot ? .netns : .loopback
        }
    }

    /// Why `auto` chose the mode it did, for the run's notes.
    public static var autoReason: String {
        if PrivateNetwork.isInside {
            return
                "loopback mode inside a private network (a user and network namespace of this run's own, no root needed); netns mode needs root (named namespaces and TUN devices)"
        }
        return isRoot ? "netns mode (root)" : "loopback mode (not root)"
    }

    /// Lowest port an unprivileged process may bind.
    public static var unprivilegedPortStart: Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8) else { return 1024 }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1024
    }

    /// Problems binding the scenario's ports as this user, one message each.
    public static func portProblems(_ scenario: Scenario, dnsPort: UInt16) -> [String] {
        guard !isRoot else { return [] }
        let limit = unprivilegedPortStart
        var problems: [String] = []
        for app in scenario.applications where Int(app.edge.ports.first) < limit {
            problems.append(
                "app \(app.id) listens on \(app.edge) and ports below \(limit) need root (or sysctl net.ipv4.ip_unprivileged_port_start=0)")
        }
        for origin in scenario.topology.origins {
            for range in origin.ports where Int(range.first) < limit {
                problems.append("origin \(origin.name) listens on port \(range) and ports below \(limit) need root")
            }
        }
        if Int(dnsPort) < limit { problems.append("the DNS responder's port \(dnsPort) needs root; pass --dns-port 5300") }
        return problems
    }

    /// The running executable, for starting node processes.
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
