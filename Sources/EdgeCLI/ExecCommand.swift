import ArgumentParser
import EdgeModel
import EdgeNet
import EdgeSim
import Foundation

struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command (dig, curl, socat, tcpdump) inside a running fleet's network.",
        discussion: """
            TARGET is the process id `edgesim run` or `edgesim up` printed. A fleet in a private \
            network (edgesim without root) is entered with it; in netns mode --host picks the \
            host's namespace (as `ip netns exec` does), and without it the command runs in the \
            network the runner sees. Exit status: the command's, or 1 when the \
            fleet cannot be entered, 2 for a usage error.
            """
    )

    @Argument(help: "The process id of the edgesim run or up.")
    var target: Int32

    @Option(help: "In netns mode: the host (client, edge node or origin) whose namespace the command runs in.")
    var host: String?

    @Argument(parsing: .postTerminator, help: "The command, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command after --, e.g. edgesim exec 4242 -- dig NAME") }
    }

    func run() async throws {
        guard target > 0, kill(target, 0) == 0 || errno == EPERM else {
            printError("error: no process \(target): give the process id edgesim run or up printed")
            throw ExitCode(1)
        }
        let pid: pid_t
        do {
            let isPrivate = PrivateNetwork.isInOtherUserNamespace(target)
            let fleet = try? RunningFleet.find("\(target)")
            if let host, fleet?.mode != FleetPlan.Mode.loopback.rawValue {
                // In netns mode a host's namespace is named in the fleet's mount namespace (its own when private).
                let namespace = "/var/run/netns/\(NamespaceNetwork.namePrefix)\(target)-\(host)"
                // Through /proc/PID/root an absolute symbolic link (/var/run) would lead back to this root.
                let seen = isPrivate ? "/proc/\(target)/root/run/netns/\(NamespaceNetwork.namePrefix)\(target)-\(host)" : namespace
                guard FileManager.default.fileExists(atPath: seen) else {
                    let hosts = (try? fleet?.description().topology.hostNames) ?? []
                    printError(
                        "error: the fleet of \(target) has no host '\(host)'\(hosts.isEmpty ? "" : "; its hosts: \(hosts.joined(separator: ", "))")"
                    )
                    throw ExitCode(1)
                }
                pid = try PrivateNetwork.spawn(command, enteringProcess: isPrivate ? target : 0, netns: namespace)
            } else if isPrivate {
                // A private fleet in loopback mode is one network for every host.
                pid = try PrivateNetwork.spawn(command, enteringProcess: target)
            } else {
                // The same network as this process: the command runs as it is.
                pid = try PrivateNetwork.spawn(command, enteringProcess: 0)
            }
        } catch let failure as PrivateNetwork.Failure {
            printError("error: \(failure)")
            throw ExitCode(1)
        }
        let forward = SignalWatch([SIGINT, SIGTERM]) { signal in kill(pid, signal) }
        defer { forward.stop() }
        let status = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: PrivateNetwork.wait(pid)) }.start()
        }
        if status != 0 { throw ExitCode(status) }
    }
}
