import CEdgeNet
import Foundation

/// A network of a run's own without root: the run starts inside a new user namespace and a
/// network namespace it owns, where the user is root (as rootless containers do). Ports below
/// 1024 bind, addresses are private to the run, several runs coexist, and nothing is left in the
/// machine's own network when it ends.
public enum PrivateNetwork {
    /// Set in the environment of a process started inside one.
    public static let environmentKey = "EDGESIM_PRIVATE_NETWORK"

    /// This process runs inside a private network edgesim made.
    public static var isInside: Bool { ProcessInfo.processInfo.environment[environmentKey] == "1" && geteuid() == 0 }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What to do when the kernel refuses a user namespace.
    public static func explain(_ error: Int32) -> String {
        let reason = String(cString: strerror(error))
        switch error {
        case EPERM, EACCES, ENOSPC, EINVAL, EUSERS:
            return
                "unprivileged user namespaces are not allowed here (\(reason)): enable them (sysctl user.max_user_namespaces=15000; on Debian and Ubuntu kernels also kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0), or run as root"
        default:
            return "cannot make a private network: \(reason)"
        }
    }

    /// Starts `path` with `arguments` inside a new private network; its process id.
    public static func spawn(_ path: String, _ arguments: [String]) throws(Failure) -> pid_t {
        var environment = ProcessInfo.processInfo.environment
        environment[environmentKey] = "1"
        let result = withCStrings([path] + arguments) { argv in
            withCStrings(environment.map { "\($0.key)=\($0.value)" }) { envp in
                var pid: pid_t = 0
                let error = cedgenet_spawn_private(path, argv, envp, getuid(), getgid(), &pid)
                return (error, pid)
            }
        }
        guard result.0 == 0 else { throw Failure(description: explain(result.0)) }
        return result.1
    }

    /// Starts `command` (looked up in PATH) inside the network namespace at `netns`, or, when it
    /// is nil, inside the user and network namespaces of process `target` (0: where this process
    /// is); its process id.
    public static func spawn(_ command: [String], enteringProcess target: pid_t, netns: String? = nil) throws(Failure) -> pid_t {
        let result = withCStrings(command) { argv in
            var pid: pid_t = 0
            let error = cedgenet_spawn_entered(target, netns, command[0], argv, &pid)
            return (error, pid)
        }
        guard result.0 == 0 else {
            throw Failure(description: "cannot run \(command[0]) in the fleet's network: \(String(cString: strerror(result.0)))")
        }
        return result.1
    }

    /// Inside: the loopback interface comes up down in a new network namespace.
    public static func prepare() throws {
        try IPCommand.run(["link", "set", "lo", "up"])
    }

    /// The exit status of a child, as a shell gives it (128 + signal when one ended it).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return 1 }
        }
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// Whether process `pid` lives in a user namespace other than this process's.
    public static func isInOtherUserNamespace(_ pid: pid_t) -> Bool {
        guard let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user"),
            let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
        else { return false }
        return theirs != mine
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
