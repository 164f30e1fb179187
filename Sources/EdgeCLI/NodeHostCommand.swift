import ArgumentParser
import EdgeModel
import EdgeProxy
import EdgeSim
import Foundation
import Logging
import ServiceLifecycle

struct NodeHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-host",
        abstract:
            "Host several of a fleet's edge nodes in one process, driven over standard input (how edgesim run and up start nodes) or over TCP (--listen).",
        discussion: """
            Requests are JSON lines naming their node: start, stop, kill, freeze, thaw, ping, serve, \
            retire, reconcile, define, remove, routes; replies and events are JSON lines on standard \
            output. Each node gets event loops of its own, made inside its network namespace in netns \
            mode, so its sockets are there. Every node stops, and the process ends, when standard \
            input closes.

            With --listen, the process waits for a runner elsewhere (edgesim run or up with \
            --node-hosts) on a TCP port instead, as a node-host pod does: the runner says which nodes \
            to host, and the same lines go over the connection. In netns mode each hosted node gets a \
            namespace here that holds its addresses and tunnels everything else to its namespace in \
            the runner's topology. When the runner goes, the nodes stop, their namespaces go, and the \
            next runner may connect.
            """
    )

    @Option(help: "Serve as this scenario's edge nodes (how edgesim run starts them).")
    var scenario: String?

    @Option(help: "Serve as this topology's edge nodes, with --apps if any (how edgesim up starts them).")
    var topology: String?

    @Option(help: "Applications, with --topology.")
    var apps: String?

    @Option(help: "loopback or netns, as the runner chose.")
    var mode: String = "loopback"

    @Option(help: "The edge nodes this process may host, comma-separated (with --listen, the runner says).")
    var nodes: String?

    @Option(help: "Wait for a runner elsewhere on this address:port (port 0: any; the port is printed).")
    var listen: String?

    @Option(help: "With --listen: a file holding the token a runner must give (--node-host-token).", completion: .file())
    var tokenFile: String?

    @Option(help: "netns mode: the fleet's namespaces are named this followed by the node's name.")
    var namespacePrefix: String?

    @Option(help: "Event loop threads for each node.")
    var threadsPerNode = 1

    @Option(help: "DNS server for origin_dns applications, as address:port.")
    var resolver: String?

    @Option(help: "Folder of the fleet's issued certificates and CA.", completion: .directory)
    var certificates: String?

    func validate() throws {
        guard (scenario == nil) != (topology == nil) else { throw ValidationError("give --scenario or --topology") }
        if scenario != nil, apps != nil { throw ValidationError("--scenario holds the applications") }
        guard let parsed = FleetPlan.Mode(rawValue: mode) else { throw ValidationError("--mode must be loopback or netns") }
        if let listen {
            guard NodePods.parse(listen, anyPort: true) != nil else { throw ValidationError("--listen \(listen) is not address:port") }
            if nodes != nil { throw ValidationError("with --listen the runner says which nodes to host: leave out --nodes") }
            if namespacePrefix != nil {
                throw ValidationError("with --listen the process names its own namespaces: leave out --namespace-prefix")
            }
        } else {
            if parsed == .netns, namespacePrefix == nil { throw ValidationError("netns mode needs --namespace-prefix") }
            guard !names.isEmpty else { throw ValidationError("--nodes names no node") }
            if tokenFile != nil { throw ValidationError("--token-file goes with --listen") }
        }
        guard (1...64).contains(threadsPerNode) else { throw ValidationError("--threads-per-node must be between 1 and 64") }
        if let resolver, Endpoint(resolver) == nil { throw ValidationError("--resolver \(resolver) is not address:port") }
    }

    private var names: [String] {
        (nodes ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() async throws {
        let plan = try FleetNodePlan.load(scenario: scenario, topology: topology, apps: apps, mode: mode)
        if let listen { return try await serve(plan, listen: listen) }
        let unknown = names.filter { !plan.edgeNodes.contains($0) }
        guard unknown.isEmpty else {
            printError("error: not edge nodes of \(plan.scenario.topology.name): \(unknown.joined(separator: ", "))")
            throw ExitCode(2)
        }
        let blueprints = names.map { NodeBlueprint(plan: plan, node: $0, certificateFolder: certificates) }
        // TLS settings that cannot work are refused now, naming the field, rather than per connection.
        if let unusable = blueprints.first?.unusableTLS(), !unusable.isEmpty {
            for problem in unusable { printError("error: \(problem)") }
            throw ExitCode(2)
        }
        var options = NodeHost.Options()
        options.threadsPerNode = threadsPerNode
        options.resolver = resolver.flatMap(Endpoint.init)
        options.certificateFolder = certificates
        options.namespacePrefix = plan.mode == .netns ? namespacePrefix : nil
        let events = EventLog(output: .standardOutput)
        let logger = Logger(label: "edgesim.node-host")
        let host = NodeHost(blueprints: blueprints, options: options, events: events, logger: logger)
        let control = NodeHostControlService(host: host)
        try? FileHandle.standardOutput.writeAll(NodeControl.encode(NodeControl.Output(ready: true)))
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: control, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            printError("error: \(error)")
        }
        await host.stopAll(grace: .seconds(1))
        // Events still on their way out are written before the process ends.
        events.flush()
    }

    /// Waits for runners on `listen`, one at a time, until SIGTERM or SIGINT.
    private func serve(_ plan: FleetPlan, listen: String) async throws {
        let (host, port) = NodePods.parse(listen, anyPort: true)!
        let token: String?
        if let tokenFile {
            do {
                token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                printError("error: --token-file: cannot read \(tokenFile): \(error.localizedDescription)")
                throw ExitCode(2)
            }
            if token?.isEmpty == true {
                printError("error: --token-file \(tokenFile) is empty")
                throw ExitCode(2)
            }
        } else {
            token = nil
        }
        var options = NodeHost.Options()
        options.threadsPerNode = threadsPerNode
        options.resolver = resolver.flatMap(Endpoint.init)
        options.certificateFolder = certificates
        let logger = Logger(label: "edgesim.node-host")
        let listener: NodeHostListener
        do {
            listener = try NodeHostListener(
                plan: plan, host: host, port: port, token: token, options: options, certificateFolder: certificates, logger: logger,
                say: { printError($0) })
        } catch {
            printError("error: cannot listen on \(listen): \(error)")
            throw ExitCode(1)
        }
        printError(
            "node-host: \(plan.scenario.topology.name) (\(plan.edgeNodes.count) edge nodes, \(plan.mode.rawValue) mode), waiting for a runner"
        )
        // The port on standard output alone, for whoever started it with port 0.
        try? FileHandle.standardOutput.writeAll(Data("listening on \(host.contains(":") ? "[\(host)]" : host):\(listener.port)\n".utf8))
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: listener)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
