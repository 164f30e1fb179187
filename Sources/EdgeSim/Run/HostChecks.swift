import EdgeModel
import EdgeNet
import Foundation

/// What this machine and user allow, checked before a run starts so the run fails early with
/// a message rather than halfway.
public enum HostChecks {
    public static var isRoot: Bool { geteuid() == 0 }

    /// Root of the machine, not only of a private network.
    public static var isMachineRoot: Bool { isRoot && !PrivateNetwork.isInside }

    /// Hosts can have network namespaces of their own: as root, or inside a private network whose
    /// namespace folders are its own.
    public static var canUseNamespaces: Bool {
        isMachineRoot || (PrivateNetwork.isInside && PrivateNetwork.namespaceSupport == .ready)
    }

    /// The mode `auto` means here: the most faithful one available.
    public static func resolve(_ mode: RunMode) -> FleetPlan.Mode {
        switch mode {
        case .loopback: return .loopback
        case .netns: return .netns
        case .auto: return canUseNamespaces ? .netns : .loopback
        }
    }

    /// Why `auto` chose the mode it did, for the run's notes.
    public static var autoReason: String {
        if PrivateNetwork.isInside {
            if case .unavailable(let why) = PrivateNetwork.namespaceSupport {
                return
                    "loopback mode inside a private network (a user and network namespace of this run's own): hosts cannot have namespaces here: \(why)"
            }
            return "netns mode inside a private network (user, network and mount namespaces of this run's own, no root needed)"
        }
        return isRoot
            ? "netns mode (root: every host in a network namespace)"
            : "loopback mode (not root, and no private network: ports below 1024 need root)"
    }

    /// Why netns mode cannot run here; nil when it can.
    public static var netnsRefusal: String? {
        guard !canUseNamespaces else { return nil }
        if case .unavailable(let why) = PrivateNetwork.namespaceSupport {
            return "netns mode is not possible in this private network (\(why)); use --mode loopback"
        }
        return "netns mode needs root or a private network (unprivileged user namespaces; see the note above); use --mode loopback"
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
