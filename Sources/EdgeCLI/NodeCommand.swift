import ArgumentParser
import EdgeDNS
import EdgeModel
import EdgeProxy
import EdgeSim
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one edge node in the foreground, serving every application in a file.",
        discussion: """
            The apps file is a JSON array of application objects, the same as a YAML list, or a saved \
            API list response ({"result": [...], "success": true}). Each application is served on every \
            listen address of the family its edge_ips allow; port ranges listen on every port. \
            Events are JSON lines; a summary is printed to standard error when the node stops \
            (SIGINT or SIGTERM).
            """
    )

    @Option(help: "Applications to serve.", completion: .file(extensions: ["json", "yaml", "yml"]))
    var apps: String?

    @Option(help: "Serve as this scenario's edge node --as NAME (how edgesim run starts its nodes).")
    var scenario: String?

    @Option(
        help: "Serve as this topology's edge node --as NAME, with --apps if any (how edgesim up starts its nodes).",
        completion: .file(extensions: ["yaml", "yml"]))
    var topology: String?

    @Option(name: .customLong("as"), help: "The scenario's (or topology's) edge node to be.")
    var nodeName: String?

    @Option(help: "With --scenario or --topology: loopback or netns, as the runner chose.")
    var mode: String = "loopback"

    @Flag(
        help: "Take serve/retire requests as JSON lines on standard input (events and replies go to standard output); stop when it closes.")
    var control = false

    @Option(name: .customLong("listen"), help: "An address to serve on (repeatable); default 127.0.0.1.")
    var listenAddresses: [String] = ["127.0.0.1"]

    @Option(help: "Node name written into events.")
    var name = "edge"

    @Option(help: "Where events go: a file path, or - for standard output. Default: none.")
    var events: String?

    @Option(help: "IP access rules (a list, or a saved API response).")
    var accessRules: String?

    @Option(help: "Prefix table giving country and ASN of client blocks.")
    var prefixes: String?

    @Option(help: "DNS server for origin_dns applications, as address:port (e.g. 127.0.0.1:53 or [::1]:5300).")
    var resolver: String?

    @Option(help: "Close a UDP flow after this long without traffic (e.g. 30s).")
    var udpIdle = "30s"

    @Option(help: "Give up connecting to an origin after this long (e.g. 5s).")
    var connectTimeout = "5s"

    @Option(help: "Most UDP flows per listener before the least recently used is evicted.")
    var udpMaxFlows = 10_000

    @Option(help: "Most TCP connections open at once on the node; more are refused.")
    var tcpMaxConnections = 10_000

    @Option(help: "Most TCP connections open at once for one application.")
    var tcpMaxConnectionsPerApp = 5_000

    @Option(help: "Close a TCP connection after this long with no byte either way (e.g. 300s).")
    var tcpIdle = "300s"

    @Option(help: "Close a half-closed TCP connection after this long with nothing moving (e.g. 30s).")
    var tcpHalfClosed = "30s"

    @Option(help: "How long another edge may take to send a relay header (e.g. 10s).")
    var headerTimeout = "10s"

    @Option(
        help:
            "Bytes a TCP connection may hold for a side not taking them, each way, in the node's queue and in the socket's send buffer (e.g. 256KiB; default: a 256 KiB queue and the kernel's own send buffer)."
    )
    var bufferedBytes: String?

    @Option(
        help:
            "Folder of certificates issued for applications with edge TLS and no tls_certificate of their own (<app id>.pem, <app id>-key.pem) and of the CA strict mode trusts (ca.pem); edgesim run and up make one.",
        completion: .directory)
    var certificates: String?

    @Option(
        help:
            "Event loop threads serving the node's connections and flows, and as many relay threads for plain TCP applications (default: one per core)."
    )
    var threads: Int?

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
        if scenario != nil, apps != nil || topology != nil { throw ValidationError("--scenario holds the topology and applications") }
        guard apps != nil || scenario != nil || topology != nil else {
            throw ValidationError("give --apps, --scenario (with --as) or --topology (with --as)")
        }
        if scenario != nil || topology != nil, nodeName == nil {
            throw ValidationError("\(scenario != nil ? "--scenario" : "--topology") needs --as NODE")
        }
        guard FleetPlan.Mode(rawValue: mode) != nil else { throw ValidationError("--mode must be loopback or netns") }
        for address in listenAddresses where IPAddress(address) == nil {
            throw ValidationError("--listen \(address) is not an IP address")
        }
        for (flag, text) in flagDurations {
            switch Quantity.duration(text) {
            case .failure(let problem): throw ValidationError("\(flag): \(problem.message)")
            case .success(let value) where value <= .zero: throw ValidationError("\(flag) must be above zero, not \(text)")
            case .success: continue
            }
        }
        for (flag, value) in [
            ("--udp-max-flows", udpMaxFlows), ("--tcp-max-connections", tcpMaxConnections),
            ("--tcp-max-connections-per-app", tcpMaxConnectionsPerApp),
        ] where value < 1 {
            throw ValidationError("\(flag) must be at least 1")
        }
        switch bufferedBytes.map(Quantity.byteCount) {
        case .failure(let problem): throw ValidationError("--buffered-bytes: \(problem.message)")
        case .success(let value) where !(4096...64 * 1024 * 1024).contains(value):
            throw ValidationError("--buffered-bytes must be from 4KiB to 64MiB, not \(bufferedBytes ?? "")")
        case .success, nil: break
        }
        if let resolver, Endpoint(resolver) == nil {
            throw ValidationError("--resolver \(resolver) is not address:port (e.g. 127.0.0.1:53 or [::1]:5300)")
        }
    }

    private var flagDurations: [(String, String)] {
        [
            ("--udp-idle", udpIdle), ("--connect-timeout", connectTimeout), ("--tcp-idle", tcpIdle), ("--tcp-half-closed", tcpHalfClosed),
            ("--header-timeout", headerTimeout),
        ]
    }

    /// The limits the flags give (a node on its own; in a fleet the scenario's `limits:`).
    private var flagLimits: NodeLimits {
        var limits = NodeLimits()
        func duration(_ text: String) -> Duration { (try? Quantity.duration(text).get()) ?? .seconds(1) }
        limits.udpIdleTimeout = duration(udpIdle)
        limits.connectTimeout = duration(connectTimeout)
        limits.udpFlows = udpMaxFlows
        limits.tcpConnections = tcpMaxConnections
        limits.tcpConnectionsPerApplication = tcpMaxConnectionsPerApp
        limits.tcpIdleTimeout = duration(tcpIdle)
        limits.tcpHalfClosedTimeout = duration(tcpHalfClosed)
        limits.headerTimeout = duration(headerTimeout)
        limits.bufferedBytes = bufferedBytes.flatMap { try? Quantity.byteCount($0).get() }.map(Int.init)
        return limits
    }

    func run() async throws {
        let loader = ConfigLoader()
        var applications: Loaded<[Application]>
        var rules: [AccessRule]
        var table: [PrefixInfo]
        var name = self.name
        var listen = listenAddresses.compactMap { IPAddress($0) }
        var originSource: IPAddress?
        var smartRouting: SmartRoutingConfiguration?
        var limits = flagLimits
        do {
            if scenario != nil || topology != nil, let nodeName {
                let plan = try FleetNodePlan.load(scenario: scenario, topology: topology, apps: apps, mode: mode)
                guard plan.edgeNodes.contains(nodeName) else {
                    printError("error: \(nodeName) is not an edge node of \(plan.scenario.topology.name)")
                    throw ExitCode(2)
                }
                applications = Loaded(value: plan.applications, warnings: [])
                rules = plan.accessRules
                table = plan.prefixes
                name = nodeName
                listen = []
                // On loopback, connections to origins leave from the node's own address, so the
                // fabric knows which edge-to-origin link they cross.
                if plan.mode == .loopback { originSource = plan.hostAddresses[nodeName] }
                smartRouting = plan.smartRouting(for: nodeName)
                limits = plan.scenario.limits
            } else {
                applications = try loader.loadApplications(apps!)
                rules = try accessRules.map { try loader.loadAccessRules($0).value } ?? []
                table = try prefixes.map { try loader.loadPrefixes($0).value } ?? []
            }
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        for warning in applications.warnings { printError(warning.description) }
        let usesOriginDNS = applications.value.contains { if case .dns = $0.origin { return true } else { return false } }
        if usesOriginDNS, resolver == nil {
            printError("error: applications with origin_dns need --resolver address:port")
            throw ExitCode(2)
        }

        // TLS settings that cannot work are refused now, naming the field, rather than per connection.
        var unusable = false
        for app in applications.value where app.tls != .off {
            do {
                _ = try EdgeTLS(app: app, issuedFolder: certificates)
            } catch {
                printError("error: \(app.location.file):\(app.location.line): application \(app.id): \(error)")
                unusable = true
            }
        }
        if unusable { throw ExitCode(2) }

        var configuration = ProxyConfiguration(limits: limits)
        configuration.certificateFolder = certificates
        configuration.nodeName = name
        configuration.originSourceIPv4 = originSource
        let output: FileHandle?
        switch control ? "-" : events {
        case nil: output = nil
        case "-": output = .standardOutput
        case let path?:
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                printError("error: cannot write events to \(path)")
                throw ExitCode(1)
            }
            output = handle
        }
        let log = EventLog(output: output)
        let logger = Logger(label: "edgesim.node.\(name)")
        let loops = threads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
        let node = EdgeNode(
            applications: applications.value, listen: listen, accessRules: rules,
            prefixes: table, configuration: configuration, events: log,
            resolver: resolver.flatMap(Endpoint.init).map { DNSOriginResolver(client: DNSClient(server: $0)) },
            smartRouting: smartRouting, group: loops ?? MultiThreadedEventLoopGroup.singleton, logger: logger)
        let service = NodeService(node: node, logger: logger) { [name] listeners in
            let ports = Dictionary(grouping: listeners, by: { "\($0.app) \($0.transport.rawValue) \($0.endpoint.address.bracketed)" })
            for (key, group) in ports.sorted(by: { $0.key < $1.key }) {
                let sorted = group.map(\.endpoint.port).sorted()
                let range = sorted.count == 1 ? "\(sorted[0])" : "\(sorted.first!)-\(sorted.last!)"
                printError("node \(name): serving \(key):\(range)")
            }
            printError("node \(name): ready")
            if control { try? FileHandle.standardOutput.writeAll(NodeControl.encode(NodeControl.Output(ready: true))) }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
        if control {
            services.append(
                .init(
                    service: NodeControlService(node: node, certificateFolder: certificates),
                    successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            try? await loops?.shutdownGracefully()
        } catch {
            try? await loops?.shutdownGracefully()
            printError("error: \(error)")
            throw ExitCode(1)
        }
        // Events still on their way out are written before the process ends.
        log.flush()
        let summary = log.summary()
        if control { return }
        printError(summary.groups.isEmpty ? "node \(name): no traffic" : summary.table)
    }
}
