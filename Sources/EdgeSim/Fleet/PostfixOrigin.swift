import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation

/// Debian's Postfix as an origin: a configuration of its own in a scratch folder
/// (`edgesim-postfix-<runner pid>-<origin>-<n>`), started in the origin's namespace, where
/// its resolver is the fleet's DNS. It listens on the origin's address and ports, reads PROXY
/// headers when the origin expects them (`smtpd_upstream_proxy_protocol = haproxy`, v1 and v2),
/// checks clients as `checks:` asks, and discards what it accepts. What it did is read from
/// its own log file.
final class PostfixOrigin: Sendable {
    static let folderPrefix = "edgesim-postfix-"
    static let command = "/usr/sbin/postfix"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: command) }

    /// Runs in the origin's namespace; ends Postfix and removes the folder when its input
    /// closes, which also happens when the runner is gone however it went.
    static let supervisor = """
        dir="$1"
        postfix -c "$dir" check >"$dir/start.log" 2>&1 || { echo "failed: postfix check: $(tail -3 "$dir/start.log")"; exit 3; }
        postfix -c "$dir" start >>"$dir/start.log" 2>&1 || { echo "failed: postfix start: $(tail -3 "$dir/maillog" "$dir/start.log" 2>/dev/null)"; exit 4; }
        echo started
        cat >/dev/null
        postfix -c "$dir" stop >/dev/null 2>&1
        pid=$(sed 1q "$dir/queue/pid/master.pid" 2>/dev/null | tr -d ' ')
        i=0
        # Until it is gone or a zombie (nobody may reap a daemon in a container).
        while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i+1))
        done
        [ -n "$pid" ] && kill -9 -"$pid" 2>/dev/null
        rm -rf "$dir"
        """

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let spec: OriginSpec
    let address: IPAddress
    let hostname: String
    private let wrap: @Sendable ([String]) -> [String]
    private let running = Locked<(process: ChildProcess, folder: String)?>(nil)
    /// Log lines of earlier runs (an origin stopped and started again).
    private let earlierLog = Locked<[String]>([])
    private let starts = Locked(0)

    init(spec: OriginSpec, address: IPAddress, hostname: String, wrap: @escaping @Sendable ([String]) -> [String]) {
        self.spec = spec
        self.address = address
        self.hostname = hostname
        self.wrap = wrap
    }

    func start() async throws {
        guard Self.isInstalled else {
            throw Failure(description: "kind postfix needs Debian's postfix package (scripts/setup installs it)")
        }
        let count = starts.withLock { value -> Int in
            value += 1
            return value
        }
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(Self.folderPrefix)\(getpid())-\(spec.name)-\(count)").path
        try writeConfiguration(in: folder)
        let process = try ChildProcess(wrap(["/bin/sh", "-c", Self.supervisor, "sh", folder]), input: .pipe, output: .pipe)
        running.set((process, folder))
        var said: [String] = []
        if let output = process.output {
            for await line in LineStream.lines(of: output) {
                said.append(line)
                if line == "started" || line.hasPrefix("failed") { break }
            }
        }
        guard said.last == "started" else {
            await stop()
            throw Failure(description: said.last.map { String($0.dropFirst("failed: ".count)) } ?? "postfix ended before it started")
        }
    }

    func stop() async {
        guard
            let (process, folder) = running.withLock({ value in
                defer { value = nil }
                return value
            })
        else { return }
        let lines = Self.readLog(folder)
        earlierLog.withLock { $0 += lines }
        // Read before the supervisor removes the folder: if the supervisor itself is gone, the
        // master is ended from here.
        let master = Self.masterPID(folder)
        try? process.input?.close()
        await process.end(within: .seconds(8))
        if let master, Self.isAlive(master) {
            kill(-master, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(3)
            while Self.isAlive(master), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            kill(-master, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The log so far: earlier runs' and the current one's.
    var log: [String] {
        earlierLog.value + (running.value.map { Self.readLog($0.folder) } ?? [])
    }

    var outcomes: [MailOutcome] { PostfixLog(lines: log).outcomes }
    var clientsSeen: [IPAddress] { PostfixLog(lines: log).connections }

    /// The master's pid from Postfix's pid file in the queue directory.
    static func masterPID(_ folder: String) -> Int32? {
        guard let text = try? String(contentsOfFile: folder + "/queue/pid/master.pid", encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Running, and not a zombie nobody reaped.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.contains("State:\tZ")
    }

    static func readLog(_ folder: String) -> [String] {
        guard let text = try? String(contentsOfFile: folder + "/maillog", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }

    private func writeConfiguration(in folder: String) throws {
        let files = FileManager.default
        try? files.removeItem(atPath: folder)
        do {
            for sub in ["", "/queue", "/data"] {
                try files.createDirectory(atPath: folder + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            }
            // Postfix's daemons run as the postfix user and write their data there.
            try files.setAttributes([.ownerAccountName: "postfix"], ofItemAtPath: folder + "/data")
            try mainCF(folder).write(toFile: folder + "/main.cf", atomically: true, encoding: .utf8)
            try masterCF().write(toFile: folder + "/master.cf", atomically: true, encoding: .utf8)
        } catch {
            try? files.removeItem(atPath: folder)
            if PrivateNetwork.isInside, !PrivateNetwork.mapsOtherUsers {
                throw Failure(
                    description:
                        "Postfix runs as its own user 'postfix', which a private network has only when the user running edgesim has subordinate ids: give it a range in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER) and install uidmap (newuidmap), or run as root"
                )
            }
            throw Failure(description: "cannot write the postfix configuration in \(folder): \(error)")
        }
    }

    func mainCF(_ folder: String) -> String {
        var restrictions: [String] = []
        if spec.checks.contains(.ptr) { restrictions.append("reject_unknown_reverse_client_hostname") }
        if spec.checks.contains(.fcrdns) { restrictions.append("reject_unknown_client_hostname") }
        let settings: [(String, String)] = [
            ("compatibility_level", "3.6"),
            ("queue_directory", folder + "/queue"),
            ("data_directory", folder + "/data"),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", hostname),
            ("smtpd_banner", spec.banner ?? "$myhostname ESMTP Postfix"),
            ("inet_interfaces", address.description),
            ("inet_protocols", address.isIPv4 ? "ipv4" : "ipv6"),
            ("mynetworks", ""),
            ("mydestination", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("biff", "no"),
            // Everything accepted is dropped: the test is whether it was accepted.
            ("default_transport", "discard"),
            ("relay_transport", "discard"),
            ("local_transport", "discard"),
            ("relay_domains", "static:all"),
            ("smtpd_relay_restrictions", "permit_auth_destination, reject"),
            ("smtpd_helo_required", "yes"),
            ("smtpd_helo_restrictions", spec.checks.contains(.helo) ? "reject_unknown_helo_hostname" : ""),
            ("smtpd_client_restrictions", restrictions.joined(separator: ", ")),
            ("smtpd_upstream_proxy_protocol", spec.proxyProtocol == .off ? "" : "haproxy"),
            ("maillog_file", folder + "/maillog"),
            ("maillog_file_prefixes", folder),
        ]
        return settings.map { "\($0.0) = \($0.1)" }.joined(separator: "\n") + "\n"
    }

    func masterCF() -> String {
        let host = address.isIPv4 ? address.description : "[\(address)]"
        let listeners = spec.ports.flatMap { Array($0.first...$0.last) }.map { "\(host):\($0) inet n - n - - smtpd" }
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return (listeners + services).joined(separator: "\n") + "\n"
    }
}

/// What a Postfix log says happened: the client addresses it was told (`connect from
/// name[address]`), messages it queued (`client=name[address]`) and recipients it refused
/// (`NOQUEUE: reject: RCPT from name[address]: <reply>;`).
public struct PostfixLog: Sendable {
    public var connections: [IPAddress] = []
    public var outcomes: [MailOutcome] = []

    public init(lines: [String]) {
        for line in lines {
            guard let program = line.range(of: "postfix/smtpd[") else { continue }
            let rest = line[program.upperBound...]
            if let range = rest.range(of: "]: connect from "), let address = Self.bracketed(rest[range.upperBound...]) {
                connections.append(address)
            } else if let range = rest.range(of: ": client="), let address = Self.bracketed(rest[range.upperBound...]) {
                outcomes.append(MailOutcome(client: address, helo: nil, reply: "250 2.0.0 Ok: queued", refusedBy: nil))
            } else if let range = rest.range(of: "NOQUEUE: reject: RCPT from ") {
                let after = rest[range.upperBound...]
                guard let address = Self.bracketed(after), let colon = after.range(of: "]: ") else { continue }
                let reply = after[colon.upperBound...].prefix { $0 != ";" }
                let helo = after.range(of: "helo=<").map { String(after[$0.upperBound...].prefix { $0 != ">" }) }
                outcomes.append(MailOutcome(client: address, helo: helo, reply: String(reply), refusedBy: Self.check(String(reply))))
            }
        }
    }

    /// The address in `name[address]` at the start of `text`.
    static func bracketed(_ text: Substring) -> IPAddress? {
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        return IPAddress(String(text[text.index(after: open)..<close]))
    }

    static func check(_ reply: String) -> MailCheck? {
        if reply.contains("cannot find your reverse hostname") { return .ptr }
        if reply.contains("cannot find your hostname") { return .fcrdns }
        if reply.contains("Helo command rejected") { return .helo }
        return nil
    }
}
