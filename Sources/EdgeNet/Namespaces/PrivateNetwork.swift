import CEdgeNet
import Foundation
import Synchronization

/// A network of a run's own without root: the run starts inside a new user namespace and a
/// network namespace it owns, where the user is root (as rootless containers do). Ports below
/// 1024 bind, addresses are private to the run, several runs coexist, and nothing is left in the
/// machine's own network when it ends. Its own mount namespace names the hosts' network
/// namespaces, so netns mode works there too.
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

    /// Starts `path` with `arguments` inside a new private network; its process id. The user's
    /// subordinate ids are mapped too when it has some (`SubordinateIDs`).
    public static func spawn(_ path: String, _ arguments: [String], subordinate: SubordinateIDs? = SubordinateIDs.forThisUser())
        throws(Failure) -> pid_t
    {
        var environment = ProcessInfo.processInfo.environment
        environment[environmentKey] = "1"
        let helpers = subordinate?.helperArguments(uid: getuid(), gid: getgid())
        let result = withCStrings([path] + arguments) { argv in
            withCStrings(environment.map { "\($0.key)=\($0.value)" }) { envp in
                withOptionalCStrings(helpers?.users) { users in
                    withOptionalCStrings(helpers?.groups) { groups in
                        var pid: pid_t = 0
                        let error = cedgenet_spawn_private(path, argv, envp, getuid(), getgid(), users, groups, &pid)
                        return (error, pid)
                    }
                }
            }
        }
        guard result.0 == 0 else {
            if result.0 == EPROTO {
                throw Failure(
                    description:
                        "newuidmap or newgidmap refused the subordinate ids /etc/subuid and /etc/subgid give this user (\(subordinate.map { "users \($0.users), groups \($0.groups)" } ?? ""))"
                )
            }
            throw Failure(description: explain(result.0))
        }
        return result.1
    }

    private static func withOptionalCStrings<R>(
        _ strings: [String]?, _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> R
    ) -> R {
        guard let strings else { return body(nil) }
        return withCStrings(strings) { body($0) }
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

    /// Inside: the loopback interface comes up down in a new network namespace. Then the
    /// folders naming network namespaces (/var/run/netns, /etc/netns) are made the run's own
    /// (empty, writable, seen by nobody outside), so hosts can have namespaces of their own;
    /// `namespaceSupport` says whether that worked, and why not.
    public static func prepare() throws {
        try IPCommand.run(["link", "set", "lo", "up"])
        do {
            for folder in ["/run/netns", "/etc/netns"] { try ownFolder(folder) }
            namespaces.withLock { $0 = .ready }
        } catch {
            namespaces.withLock { $0 = .unavailable(error.description) }
        }
    }

    /// Whether hosts can have network namespaces of their own in here.
    public enum Namespaces: Sendable, Equatable {
        case notPrepared
        case ready
        case unavailable(String)
    }

    private static let namespaces = Mutex(Namespaces.notPrepared)

    /// What `prepare` found.
    public static var namespaceSupport: Namespaces { namespaces.withLock { $0 } }

    /// Mounts an empty tmpfs at `path`. Where the folder does not exist (and cannot be made by a
    /// user who is root only here), its parent is rebuilt first: a tmpfs with the same entries,
    /// each the original bound in, plus the new folder.
    static func ownFolder(_ path: String) throws(Failure) {
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            let parent = (path as NSString).deletingLastPathComponent
            try rebuild(parent, adding: (path as NSString).lastPathComponent)
        }
        try mountTmpfs(at: path)
    }

    private static func mountTmpfs(at path: String) throws(Failure) {
        guard mount("edgesim", path, "tmpfs", 0, "mode=0755") == 0 else {
            throw Failure(description: "cannot mount a private folder at \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func rebuild(_ parent: String, adding name: String) throws(Failure) {
        let manager = FileManager.default
        let scratch = manager.temporaryDirectory.appendingPathComponent("edgesim-private-\(getpid())").path
        do {
            try manager.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        } catch {
            throw Failure(description: "cannot make \(scratch): \(error)")
        }
        defer { rmdir(scratch) }
        try mountTmpfs(at: scratch)
        let entries = (try? manager.contentsOfDirectory(atPath: parent)) ?? []
        for entry in entries {
            let original = parent + "/" + entry
            let copy = scratch + "/" + entry
            if let target = try? manager.destinationOfSymbolicLink(atPath: original) {
                try? manager.createSymbolicLink(atPath: copy, withDestinationPath: target)
                continue
            }
            var isFolder: ObjCBool = false
            _ = manager.fileExists(atPath: original, isDirectory: &isFolder)
            if isFolder.boolValue {
                try? manager.createDirectory(atPath: copy, withIntermediateDirectories: false)
            } else {
                _ = manager.createFile(atPath: copy, contents: nil)
            }
            guard mount(original, copy, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
                throw Failure(description: "cannot keep \(original) while adding \(parent)/\(name): \(String(cString: strerror(errno)))")
            }
        }
        do {
            try manager.createDirectory(atPath: scratch + "/" + name, withIntermediateDirectories: false)
        } catch {
            throw Failure(description: "cannot make \(parent)/\(name): \(error)")
        }
        guard mount(scratch, parent, nil, UInt(MS_MOVE), nil) == 0 else {
            throw Failure(description: "cannot add \(parent)/\(name): \(String(cString: strerror(errno)))")
        }
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

    /// Whether this process's user namespace maps more users than its own (subordinate ids).
    public static var mapsOtherUsers: Bool {
        guard let map = try? String(contentsOfFile: "/proc/self/uid_map", encoding: .utf8) else { return false }
        let counts = map.split(separator: "\n").compactMap { $0.split(separator: " ").last.flatMap { UInt64($0) } }
        return counts.reduce(0, +) > 1
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
