import EdgeNet
import Foundation

/// What an earlier run that crashed or was killed may have left, and its removal: node
/// processes whose runner is gone (they end by themselves when their input closes, but one
/// that is stuck is killed here) and network namespaces of runs whose runner is gone (with
/// them go their TUN devices, addresses and routes).
public enum Leftovers {
    public struct Found: Sendable, Hashable, CustomStringConvertible {
        public var pid: Int32
        public var command: String
        public var description: String { pid > 0 ? "process \(pid): \(command)" : command }
    }

    /// Namespaces named `edgesim-<pid>-<host>` whose runner process no longer exists.
    public static func findNamespaces() -> [String] {
        NetworkNamespace.list().filter(isOrphaned)
    }

    /// Resolver files of such namespaces (`/etc/netns/edgesim-<pid>-<host>`).
    public static func findEtcFolders() -> [String] {
        NetworkNamespace.listEtcFolders().filter(isOrphaned).map { NetworkNamespace($0).etcFolder }
    }

    /// `edgesim-<pid>-...` (or `edgesim-test<pid>-...`, the tests' own) whose process is gone.
    static func isOrphaned(_ name: String) -> Bool {
        guard name.hasPrefix(NamespaceNetwork.namePrefix) else { return false }
        var rest = name.dropFirst(NamespaceNetwork.namePrefix.count)
        if rest.hasPrefix("test") { rest = rest.dropFirst(4) }
        guard let pid = rest.split(separator: "-").first.flatMap({ Int32($0) }) else { return false }
        return !isEdgesim(pid)
    }

    /// Postfix master processes of `postfix` origins whose runner is gone (found by the
    /// configuration folder in their environment).
    public static func findMailServers() -> [Found] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [Found] = []
        for entry in entries {
            guard let pid = Int32(entry), let arguments = commandLine(pid), arguments.first?.hasSuffix("postfix/sbin/master") == true,
                let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            let environment = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let folder = environment.first(where: { $0.hasPrefix("MAIL_CONFIG=") })?.dropFirst(12),
                let name = folder.split(separator: "/").last, let runner = runnerPID(String(name), prefix: PostfixOrigin.folderPrefix),
                !isEdgesim(runner)
            else { continue }
            found.append(Found(pid: pid, command: "postfix master for \(folder)"))
        }
        return found
    }

    /// The pid in `<prefix><pid>` or `<prefix><pid>-<rest>`.
    static func runnerPID(_ name: String, prefix: String) -> Int32? {
        guard name.hasPrefix(prefix) else { return nil }
        return Int32(name.dropFirst(prefix.count).prefix { $0.isNumber })
    }

    static func isEdgesim(_ pid: Int32) -> Bool {
        guard let program = commandLine(pid)?.first else { return false }
        return program.hasSuffix("edgesim") || program.hasSuffix(".xctest")
    }

    /// `edgesim node-host` (and `edgesim node --control`) processes whose parent is no longer
    /// an edgesim runner; not those listening for runners (`--listen`), which are meant to outlive them.
    public static func find() -> [Found] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [Found] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(), let arguments = commandLine(pid) else { continue }
            let isNode =
                (arguments.contains("node-host") && !arguments.contains("--listen"))
                || (arguments.contains("node") && arguments.contains("--control"))
            guard arguments.first?.hasSuffix("edgesim") == true, isNode else { continue }
            let parent = parentPID(pid) ?? 1
            let parentIsRunner =
                commandLine(parent).map {
                    $0.first?.hasSuffix("edgesim") == true && !$0.contains("--control") && !$0.contains("node-host")
                } ?? false
            if parent <= 1 || !parentIsRunner { found.append(Found(pid: pid, command: arguments.joined(separator: " "))) }
        }
        return found
    }

    /// Scratch folders commands keep while they run (`edgesim-up-<pid>`, `edgesim-bench-paths-<pid>`,
    /// each with the scenario its node processes read) whose command no longer runs.
    public static func findFolders() -> [String] {
        let temporary = FileManager.default.temporaryDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        return names.filter { name in
            guard let prefix = scratchPrefixes.first(where: { name.hasPrefix($0) }), let pid = runnerPID(name, prefix: prefix) else {
                return false
            }
            return !isEdgesim(pid)
        }.map { temporary.appendingPathComponent($0).path }
    }

    static let scratchPrefixes = ["edgesim-up-", "edgesim-bench-paths-", PostfixOrigin.folderPrefix, FleetCertificates.folderPrefix]

    /// Kills what `find` reports; returns what it removed.
    @discardableResult
    public static func clean() -> [Found] {
        let found = find()
        for item in found { kill(item.pid, SIGKILL) }
        // A master leads its own process group: its daemons go with it.
        let mailServers = findMailServers()
        for item in mailServers { kill(-item.pid, SIGKILL) }
        let namespaces = findNamespaces()
        NetworkNamespace.delete(namespaces.map(NetworkNamespace.init))
        let etc = findEtcFolders()
        let folders = findFolders()
        for folder in folders + etc { try? FileManager.default.removeItem(atPath: folder) }
        return found + mailServers + namespaces.map { Found(pid: 0, command: "network namespace \($0)") }
            + folders.map { Found(pid: 0, command: "scratch folder \($0)") } + etc.map { Found(pid: 0, command: "resolver folder \($0)") }
    }

    static func commandLine(_ pid: Int32) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func parentPID(_ pid: Int32) -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("PPid:") {
            return Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
