import CEdgeNet
import EdgeModel
import Foundation
import NIOCore
import NIOPosix

/// One named network namespace (`ip netns`): the files under /var/run/netns, and threads and
/// sockets placed inside it.
public struct NetworkNamespace: Sendable, Hashable {
    public let name: String

    public init(_ name: String) {
        self.name = name
    }

    public var path: String { "/var/run/netns/\(name)" }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the namespaces in one `ip -batch`.
    public static func create(_ namespaces: [NetworkNamespace]) throws {
        try IPCommand.batch(namespaces.map { "netns add \($0.name)" })
    }

    /// Deletes them, going on past any that are already gone; returns those removed.
    @discardableResult
    public static func delete(_ namespaces: [NetworkNamespace]) -> [NetworkNamespace] {
        let existing = Set(list())
        let present = namespaces.filter { existing.contains($0.name) }
        try? IPCommand.batch(present.map { "netns delete \($0.name)" })
        return present
    }

    /// Names of every namespace `ip netns` knows.
    public static func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []).sorted()
    }

    /// Where `ip netns exec` finds the files it mounts over /etc for this namespace.
    public var etcFolder: String { "/etc/netns/\(name)" }

    /// Makes programs started with `ip netns exec` resolve names through `server`.
    public func setResolver(_ server: IPAddress) throws {
        do {
            try FileManager.default.createDirectory(atPath: etcFolder, withIntermediateDirectories: true)
            try "nameserver \(server)\noptions timeout:1 attempts:2\n".write(
                toFile: etcFolder + "/resolv.conf", atomically: true, encoding: .utf8)
        } catch {
            throw Failure(description: "cannot write \(etcFolder)/resolv.conf: \(error)")
        }
    }

    public func removeResolver() {
        try? FileManager.default.removeItem(atPath: etcFolder)
    }

    /// Names of the folders under /etc/netns.
    public static func listEtcFolders() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns")) ?? []).sorted()
    }

    /// A TUN device made inside this namespace; its descriptor is non-blocking.
    public func openTUN(named device: String) throws -> Int32 {
        let fd = cedgenet_tun_open(path, device)
        guard fd >= 0 else { throw Failure(description: "cannot create TUN \(device) in \(name): \(String(cString: strerror(-fd)))") }
        return fd
    }

    /// Sets a per-namespace sysctl, e.g. `net/ipv4/ip_forward`.
    public func sysctl(_ key: String, _ value: String) throws {
        let result = cedgenet_sysctl_in(path, "/proc/sys/\(key)", value)
        guard result == 0 else { throw Failure(description: "cannot set \(key) in \(name): \(String(cString: strerror(-result)))") }
    }

    /// Moves the calling thread into this namespace (for a thread of its own, such as a capture's).
    public func enter() throws {
        let result = cedgenet_enter_netns(path)
        guard result == 0 else { throw Failure(description: "cannot enter \(name): \(String(cString: strerror(-result)))") }
    }

    /// Event loops whose threads live in this namespace, so every socket made on them is too
    /// (threads a thread in a namespace starts are in it as well).
    public func eventLoopGroup(threads: Int = 1) throws -> MultiThreadedEventLoopGroup {
        let made = Locked<Result<MultiThreadedEventLoopGroup, Failure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let path = self.path
        let name = self.name
        let thread = Thread {
            let result = cedgenet_enter_netns(path)
            if result == 0 {
                made.set(.success(MultiThreadedEventLoopGroup(numberOfThreads: threads)))
            } else {
                made.set(.failure(Failure(description: "cannot enter \(name): \(String(cString: strerror(-result)))")))
            }
            done.signal()
        }
        thread.start()
        done.wait()
        return try made.value!.get()
    }
}
