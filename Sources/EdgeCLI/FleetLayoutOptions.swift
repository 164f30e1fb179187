import ArgumentParser
import EdgeSim
import Foundation

/// How `run` and `up` lay a fleet's edge nodes out over processes.
struct FleetLayoutOptions: ParsableArguments {
    @Option(
        help:
            "Edge nodes each node-host process holds (default: 1 for fleets of up to 32 nodes, each a process of its own; 64 beyond).")
    var nodesPerProcess: Int?

    @Option(
        help: ArgumentHelp(
            "Host the edge nodes in node-host processes listening elsewhere (edgesim node-host --listen), as host:port, comma-separated.",
            discussion: "The nodes are spread over them in topology order; nothing is started here for them."))
    var nodeHosts: String?

    @Option(help: "File holding the token the node hosts were started with (--token-file).", completion: .file())
    var nodeHostToken: String?

    func validate() throws {
        if let nodesPerProcess, !(1...1000).contains(nodesPerProcess) {
            throw ValidationError("--nodes-per-process must be between 1 and 1000")
        }
        if nodeHosts != nil, nodesPerProcess != nil {
            throw ValidationError("--node-hosts decides where nodes run: leave out --nodes-per-process")
        }
        for address in hosts where NodePods.parse(address) == nil {
            throw ValidationError("--node-hosts: \(address) is not host:port")
        }
        if nodeHosts != nil, hosts.isEmpty { throw ValidationError("--node-hosts names no host") }
        if nodeHostToken != nil, nodeHosts == nil { throw ValidationError("--node-host-token goes with --node-hosts") }
    }

    /// The node hosts given, in order.
    var hosts: [String] {
        (nodeHosts ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The token in `--node-host-token`'s file, without surrounding white space.
    func token() throws -> String? {
        guard let nodeHostToken else { return nil }
        do {
            return try String(contentsOfFile: nodeHostToken, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw ValidationError("--node-host-token: cannot read \(nodeHostToken): \(error.localizedDescription)")
        }
    }
}
