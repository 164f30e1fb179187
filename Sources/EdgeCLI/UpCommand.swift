import ArgumentParser
import EdgeAPI
import EdgeModel
import EdgeNet
import EdgeSim
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a topology (and applications) and keep it running until interrupted.",
        discussion: """
            Prints each application's name and addresses and where the fleet's DNS answers, so dig, \
            curl or your own client can be pointed at it. Ctrl-C stops and removes everything.
            """
    )

    @Argument(help: "The topology file.", completion: .file(extensions: ["yaml", "yml"]))
    var topology: String

    @Option(help: "Applications to run on it (JSON or YAML, a list or a saved API response).")
    var apps: String?

    @Option(help: "netns, loopback or auto.")
    var mode: String = "auto"

    @Option(help: "Port of the fleet's DNS responder (default 53 as root, else 5300).")
    var dnsPort: UInt16?

    @OptionGroup var layout: FleetLayoutOptions

    @Option(help: "Rotate every application's addresses this often (e.g. 30s).")
    var rotateEvery: String?

    @Option(help: "Write a line here once the fleet is up (for scripts and benchmarks).")
    var readyFile: String?

    @Option(
        help:
            "Keep the fleet's CA and the certificates it issues in this folder (a CA already there is reused, so clients keep trusting it). Default: a folder removed when the fleet stops.",
        completion: .directory)
    var certificates: String?

    @Option(help: "Write what crosses a host to a pcapng file while the fleet runs: HOST:FILE (repeatable).")
    var capture: [String] = []

    @Option(
        help:
            "Serve the fleet's HTTP API (Spectrum's /client/v4 paths and /edgesim/v1) here, e.g. 127.0.0.1:8787 (port 0: any free port).")
    var api: String?

    @Option(help: "The bearer token the API asks for (default: a random one, printed).")
    var apiToken: String?

    @Flag(help: "Let the API listen on an address other than loopback.")
    var apiPublic = false

    func validate() throws {
        if let api {
            guard let endpoint = Endpoint(api) else { throw ValidationError("--api takes ADDRESS:PORT, e.g. 127.0.0.1:8787, not '\(api)'") }
            if !apiPublic, !endpoint.address.isLoopback {
                throw ValidationError("--api \(api) is not a loopback address; add --api-public to listen there")
            }
        }
        if apiToken != nil, api == nil { throw ValidationError("--api-token goes with --api") }
        if let apiToken, apiToken.isEmpty || apiToken.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--api-token must be non-empty and without spaces")
        }
        for entry in capture where CaptureRequest(argument: entry) == nil {
            throw ValidationError("--capture takes HOST:FILE, not '\(entry)'")
        }
        guard RunMode(rawValue: mode) != nil else { throw ValidationError("--mode must be netns, loopback or auto") }
        if let rotateEvery, case .failure(let problem) = Quantity.duration(rotateEvery) {
            throw ValidationError("--rotate-every: \(problem.message)")
        }
    }

    func run() async throws {
        if let status = await PrivateLaunch.relaunch() { throw ExitCode(status) }
        try PrivateLaunch.prepareInside()
        if let wrong = wrongKind(topology, expected: .topology) {
            printError(wrong)
            throw ExitCode(2)
        }
        if let apps, let wrong = wrongKind(apps, expected: .applications) {
            printError(wrong.replacingOccurrences(of: "this command takes a applications", with: "--apps takes applications"))
            throw ExitCode(2)
        }
        let loader = ConfigLoader()
        let topologyPath = URL(fileURLWithPath: topology).standardizedFileURL.path
        let appsPath = apps.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let scenario: Scenario
        do {
            let loadedTopology = try loader.loadTopology(topologyPath)
            let loadedApps = try appsPath.map { try loader.loadApplications($0, topologyHosts: true) }
            for warning in loadedTopology.warnings + (loadedApps?.warnings ?? []) { printError(warning.description) }
            let rotation = rotateEvery.flatMap { try? Quantity.duration($0).get() }.map {
                RotationSchedule(every: $0, drain: $0, applications: [])
            }
            scenario = Scenario(
                topology: loadedTopology.value, topologyPath: topologyPath, applications: loadedApps?.value ?? [], rotation: rotation)
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        let (mode, port) = try FleetStart.prepare(scenario, mode: RunMode(rawValue: self.mode)!, dnsPort: dnsPort)
        let directory = RunningFleet.folder(of: getpid())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let plan: FleetPlan
        do {
            plan = try FleetPlan(scenario: scenario, mode: mode)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let pods: NodePods?
        do {
            pods = layout.hosts.isEmpty ? nil : try NodePods(addresses: layout.hosts, token: layout.token(), plan: plan)
        } catch {
            printError("error: --node-hosts: \(error)")
            throw ExitCode(2)
        }
        let network = Fleet.network(for: plan, dnsPort: port, pods: pods, say: { printError($0) })
        var options = Fleet.Options(
            executable: HostChecks.executablePath, scenarioPath: "", say: { printError($0) }, nodeLog: { _, _ in })
        options.nodeSource = .topology(topologyPath, applications: appsPath)
        options.applicationsChange = true
        options.nodesPerProcess = layout.nodesPerProcess
        options.nodePods = pods
        // The fleet counts for /metrics from its start, so the first scrape sees everything.
        let metrics = api == nil ? nil : MetricsEndpoint()
        options.metrics = metrics?.metrics
        options.certificateFolder =
            certificates.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ?? directory.appendingPathComponent("tls").path
        let fleet = Fleet(plan: plan, network: network, options: options, ttl: 30)
        let session = Mutex(UpSession())
        let started = ContinuousClock.now
        let service = FleetService(
            fleet: fleet, drain: scenario.rotation?.drain ?? .seconds(10),
            onRunning: { fleet in
                let elapsed = (ContinuousClock.now - started).seconds
                say("fleet \(scenario.topology.name) up in \(String(format: "%.2f", elapsed)) s (\(mode.rawValue) mode)")
                for name in plan.edgeNodes {
                    if let pod = fleet.nodes[name]?.host.pod?.pod {
                        say("  node \(name): in the node host at \(pod.address)")
                    } else {
                        say("  node \(name): pid \(fleet.nodes[name]?.pid ?? 0)")
                    }
                }
                for (name, origin) in fleet.origins.sorted(by: { $0.key < $1.key }) {
                    say(
                        "  origin \(name): \(origin.spec.kind.rawValue) on \(origin.address) ports \(origin.spec.ports.map(\.description).joined(separator: ","))"
                    )
                }
                for name in scenario.topology.clients.map(\.name) {
                    let v6 = plan.hostAddressesV6[name].map { ", \($0)" } ?? ""
                    let inside = mode == .netns ? " (ip netns exec \(NamespaceNetwork.namePrefix)\(getpid())-\(name) ...)" : ""
                    say("  client \(name): \(plan.hostAddresses[name]!)\(v6)\(inside)")
                }
                for app in plan.applications {
                    say(
                        "  app \(app.id): \(app.dns.name) \(app.edge) on \(fleet.book.addresses(of: app).map(\.description).joined(separator: ", "))"
                    )
                }
                say(
                    "DNS: dig @\(fleet.dnsEndpoint.address) -p \(fleet.dnsEndpoint.port) NAME\(mode == .netns ? " (from inside a client's namespace)" : "")"
                )
                if let ca = fleet.certificateAuthorityFile {
                    let tlsApp = plan.applications.first { $0.tls != .off }
                    say(
                        "TLS: the fleet's CA is \(ca)\(tlsApp.map { " (curl --cacert \(ca) https://\($0.dns.name)/, openssl s_client -CAfile \(ca) -servername \($0.dns.name))" } ?? "")"
                    )
                }
                if plan.applications.isEmpty {
                    say("no applications: give some with --apps FILE (a JSON or YAML list of Spectrum application objects)")
                }
                for request in capture.compactMap(CaptureRequest.init(argument:)) {
                    guard scenario.topology.hostNames.contains(request.host) else {
                        printError("error: --capture \(request.host): not a host of the topology")
                        throw ExitCode(2)
                    }
                    do {
                        let capturing = try fleet.network.startCapture(request)
                        session.withLock { $0.captures.append((request, capturing)) }
                        say("  capturing what crosses \(request.host) to \(request.file)")
                    } catch {
                        printError("error: \(error)")
                        throw ExitCode(1)
                    }
                }
                let applicationsFile = directory.appendingPathComponent("applications.json").path
                let controller = FleetController(
                    fleet: fleet, given: scenario.applications, applicationsFile: applicationsFile, say: { say($0) })
                try? RunningFleet.writeApplications(scenario.applications, to: applicationsFile)
                var running = RunningFleet(
                    pid: getpid(), mode: mode.rawValue, dns: fleet.dnsEndpoint.description, topology: topologyPath,
                    applications: applicationsFile)
                running.privateNetwork = PrivateNetwork.isInside
                // In netns mode the fleet's DNS answers inside the hosts' namespaces, so from a client.
                let host = mode == .netns ? scenario.topology.clients.first.map { " --host \($0.name)" } ?? "" : ""
                say(
                    "\(PrivateNetwork.isInside ? "the fleet is in a private network; " : "")reach it with: edgesim exec \(getpid())\(host) -- dig @\(fleet.dnsEndpoint.address) -p \(fleet.dnsEndpoint.port) NAME"
                )
                if let api, let endpoint = Endpoint(api) {
                    let token = apiToken ?? APIServer.generatedToken()
                    let server = APIServer(controller: controller, configuration: .init(address: endpoint, token: token), metrics: metrics)
                    let listening = AsyncStream<Endpoint?>.makeStream()
                    let apiTask = Task {
                        do {
                            try await server.run { listening.continuation.yield($0) }
                        } catch {
                            printError("error: the API cannot listen on \(endpoint): \(error)")
                            listening.continuation.yield(nil)
                        }
                    }
                    var bound: Endpoint?
                    for await address in listening.stream {
                        bound = address
                        break
                    }
                    session.withLock { $0.tasks.append(apiTask) }
                    guard let bound else { throw ExitCode(1) }
                    running.api = "http://\(bound)"
                    say(
                        "API: http://\(bound)/client/v4 (bearer token \(token)); edgesim's own at http://\(bound)/edgesim/v1; Prometheus metrics at http://\(bound)/metrics"
                    )
                    say("dashboard: http://\(bound)/#token=\(token)")
                }
                try? running.write(to: directory)
                if let app = plan.applications.first, let client = scenario.topology.clients.first {
                    say("replay a capture from a client: edgesim replay CAPTURE --to \(getpid()) --from \(client.name) --app \(app.id)")
                }
                say("kill -USR1 \(getpid()) rotates the addresses now; Ctrl-C stops")
                if let readyFile { _ = FileManager.default.createFile(atPath: readyFile, contents: Data("\(elapsed)\n".utf8)) }

                @Sendable func rotateAll() async {
                    do {
                        try await controller.rotate()
                    } catch {
                        printError("error: \(error)")
                    }
                }
                let rotation = Task {
                    guard let every = scenario.rotation?.every else { return }
                    while !Task.isCancelled {
                        try? await Task.sleep(for: every)
                        if !Task.isCancelled { await rotateAll() }
                    }
                }
                // kill -USR1 <pid> rotates every dynamic application now (rotation on command).
                let onCommand = SignalWatch([SIGUSR1]) { _ in Task { await rotateAll() } }
                session.withLock {
                    $0.tasks.append(rotation)
                    $0.signals = onCommand
                }
            },
            onStopping: { _ in
                let (tasks, captures, signals) = session.withLock { ($0.tasks, $0.captures, $0.signals) }
                signals?.stop()
                for task in tasks { task.cancel() }
                for task in tasks { await task.value }
                printError("stopping")
                for (request, capturing) in captures {
                    let summary = capturing.stop()
                    say("captured \(summary.packets) packets (\(summary.bytes) bytes) crossing \(request.host) in \(summary.file)")
                }
            })
        var logger = Logger(label: "edgesim.up")
        logger.logLevel = .warning
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    static func quoted(_ path: String) -> String {
        "'" + path.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// What `up` started alongside the fleet, ended before the fleet stops.
struct UpSession {
    var tasks: [Task<Void, Never>] = []
    var captures: [(CaptureRequest, any HostCapture)] = []
    var signals: SignalWatch?
}
