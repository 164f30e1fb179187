import EdgeModel
import EdgeNet
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The runner's side of a fleet whose edge nodes run in node-host processes elsewhere, each
/// listening for it (`edgesim node-host --listen`, as node-host pods do): which nodes each
/// hosts, the shared token (proved, never sent: `NodeHostHandshake`), and in netns mode the tunnel that joins each node's namespace there
/// to its namespace here, in the emulated topology (`NodePodNetwork` has the other end).
public final class NodePods: Sendable {
    public struct Pod: Sendable, Hashable {
        public let host: String
        public let port: Int
        public let nodes: [String]

        public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pods: [Pod]
    public let token: String?
    public let plan: FleetPlan
    let tunnel: PodTunnel
    private let bound = Mutex<Task<Int, any Error>?>(nil)

    /// Spreads the plan's edge nodes over the listeners at `addresses` (`host:port`, `[v6]:port`)
    /// in topology order, as evenly as they go.
    public init(addresses: [String], token: String?, plan: FleetPlan) throws {
        var places: [(String, Int)] = []
        for address in addresses {
            guard let place = Self.parse(address) else { throw Failure(description: "\(address) is not host:port") }
            places.append(place)
        }
        guard !places.isEmpty else { throw Failure(description: "no node hosts given") }
        guard places.count <= plan.edgeNodes.count else {
            throw Failure(description: "\(places.count) node hosts for \(plan.edgeNodes.count) edge nodes: give at most one a node")
        }
        let share = (plan.edgeNodes.count + places.count - 1) / places.count
        pods = places.enumerated().map { index, place in
            let start = min(index * share, plan.edgeNodes.count)
            return Pod(host: place.0, port: place.1, nodes: Array(plan.edgeNodes[start..<min(start + share, plan.edgeNodes.count)]))
        }.filter { !$0.nodes.isEmpty }
        self.token = token
        self.plan = plan
        tunnel = PodTunnel(loop: MultiThreadedEventLoopGroup.singleton.next())
    }

    /// `host:port` or `[v6]:port`; nil when it is neither. Port 0 only with `anyPort`.
    public static func parse(_ address: String, anyPort: Bool = false) -> (String, Int)? {
        let host: Substring
        let port: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"), address[address.index(after: close)...].hasPrefix(":") else { return nil }
            host = address[address.index(after: address.startIndex)..<close]
            port = address[address.index(close, offsetBy: 2)...]
        } else {
            guard let colon = address.lastIndex(of: ":"), !address[..<colon].contains(":") else { return nil }
            host = address[..<colon]
            port = address[address.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), ((anyPort ? 0 : 1)...65535).contains(number) else { return nil }
        return (String(host), number)
    }

    public var remoteNodes: Set<String> { Set(pods.flatMap(\.nodes)) }

    /// The id both ends give a node's tunnel: its place in the topology.
    func tunnelID(_ node: String) -> UInt32 { UInt32(plan.edgeNodes.firstIndex(of: node)!) }

    /// The tunnel socket's port, bound at the first call on every address of `local`'s family.
    func tunnelPort(local: String) async throws -> Int {
        let task = bound.withLock { bound -> Task<Int, any Error> in
            if let bound { return bound }
            let task = Task { [tunnel] in try await tunnel.bind(host: local.contains(":") ? "::" : "0.0.0.0") }
            bound = task
            return task
        }
        return try await task.value
    }

    /// What the runner says to the process hosting `pod`, once given `challenge`: with the
    /// certificate `files`, sealed when there is a token.
    func hello(_ pod: Pod, challenge: String, tunnelPort: Int?, resolver: String?, files: [String: String]) throws
        -> NodeControl.Request
    {
        var hello = NodeControl.Request(id: 0, op: .hello, app: "", addresses: [])
        hello.proof = token.map { NodeHostHandshake.proof(token: $0, challenge: challenge, fleet: plan.fingerprint) }
        hello.challenge = token.map { _ in NodeHostHandshake.challenge() }
        try give(files, challenge: challenge, in: &hello)
        hello.nodes = pod.nodes
        hello.fleet = plan.fingerprint
        hello.resolver = resolver
        if plan.mode == .netns {
            hello.tunnels = pod.nodes.map { Int(tunnelID($0)) }
            hello.tunnelPort = tunnelPort
        }
        return hello
    }

    /// Puts certificate `files` in `request`, sealed for `challenge` when there is a token; none
    /// when there are none.
    func give(_ files: [String: String], challenge: String, in request: inout NodeControl.Request) throws {
        guard !files.isEmpty else { return }
        if let token {
            request.sealedFiles = try NodeHostHandshake.seal(files, token: token, challenge: challenge)
        } else {
            request.files = files
        }
    }

    /// The process hosting `pod` said hello back from `peer` (answering the hello's challenge
    /// when there is a token), with its tunnel socket's port.
    func connected(_ pod: Pod, hello: NodeControl.Request, challenge: String, reply: NodeControl.Output, peer: String) throws {
        if let token {
            guard
                NodeHostHandshake.verifyAnswer(
                    reply.answer ?? "", token: token, runnerChallenge: hello.challenge ?? "", challenge: challenge)
            else { throw Failure(description: "\(pod.address) did not prove it holds the token: not the node host it should be") }
        }
        let tunnelPort = reply.tunnelPort
        guard plan.mode == .netns else { return }
        guard let tunnelPort, let address = try? SocketAddress(ipAddress: peer, port: tunnelPort) else {
            throw Failure(description: "\(pod.address) gave no tunnel port")
        }
        tunnel.setPeer(address, for: pod.nodes.map(tunnelID))
    }

    public func close() async { await tunnel.close() }
}
