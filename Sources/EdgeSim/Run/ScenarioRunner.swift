import EdgeDNS
import EdgeModel
import EdgeNet
import EdgePcap
import EdgeProxy
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Runs a scenario start to finish: brings the fleet up, plays the timeline (traffic, faults,
/// rotations), checks the expectations, takes everything down, and reports.
public final class ScenarioRunner: Sendable {
    public struct Options: Sendable {
        public var mode: FleetPlan.Mode
        /// The edgesim executable, for the node processes.
        public var executable: String
        public var scenarioPath: String
        /// Port of the fleet's DNS responder in loopback mode (netns mode uses 53 at every edge).
        public var dnsPort: UInt16
        /// Progress lines, as the run goes.
        public var say: @Sendable (String) -> Void
        /// Lines the node processes write to standard error.
        public var nodeLog: @Sendable (String, String) -> Void
        /// How often progress is reported.
        public var progressEvery: Duration
        /// Play the timeline again and again until this long has passed (a soak); nil: once.
        public var duration: Duration?
        /// Captures asked for on the command line, besides the scenario's own.
        public var captures: [CaptureRequest] = []
        /// Edge nodes a node-host process holds; nil: `Fleet.automaticNodesPerProcess`.
        public var nodesPerProcess: Int?
        /// Node-host processes listening elsewhere that host the edge nodes (`host:port`);
        /// empty: processes started here.
        public var nodeHosts: [String] = []
        /// The token they were given.
        public var nodeHostToken: String?

        public init(
            mode: FleetPlan.Mode, executable: String, scenarioPath: String, dnsPort: UInt16, say: @escaping @Sendable (String) -> Void,
            nodeLog: @escaping @Sendable (String, String) -> Void = { _, _ in }, progressEvery: Duration = .seconds(2),
            duration: Duration? = nil, captures: [CaptureRequest] = [], nodesPerProcess: Int? = nil
        ) {
            self.nodesPerProcess = nodesPerProcess
            self.duration = duration
            self.captures = captures
            self.mode = mode
            self.executable = executable
            self.scenarioPath = scenarioPath
            self.dnsPort = dnsPort
            self.say = say
            self.nodeLog = nodeLog
            self.progressEvery = progressEvery
        }
    }

    public let scenario: Scenario
    public let plan: FleetPlan
    public let options: Options
    private let results = Mutex<[ConnectionResult]>([])
    private let probes = Mutex<[Observations.Probe]>([])
    private let startUsage = Mutex<[String: ProcessUsage]>([:])
    /// Origins misbehaving on purpose now.
    private let notes = Mutex<[String]>([])
    /// Timeline steps as carried out, at epoch seconds.
    private let steps = Mutex<[RunReport.TimelineEntry]>([])
    /// Per timeline index of a replay step: its capture and which flows go where.
    private let replays: [Int: (Capture, ReplayPlan)]
    private let replayed = Mutex<[ReplayResult]>([])
    /// The node hosts elsewhere, if the options name any.
    private let pods: NodePods?

    public init(scenario: Scenario, options: Options) throws(FleetPlan.PlanError) {
        self.scenario = scenario
        self.options = options
        plan = try FleetPlan(scenario: scenario, mode: options.mode)
        do {
            pods = options.nodeHosts.isEmpty ? nil : try NodePods(addresses: options.nodeHosts, token: options.nodeHostToken, plan: plan)
        } catch {
            throw FleetPlan.PlanError(description: "--node-hosts: \(error)")
        }
        for request in options.captures where !scenario.topology.hostNames.contains(request.host) {
            throw FleetPlan.PlanError(
                description:
                    "--capture \(request.host): not a host of the topology (\(scenario.topology.hostNames.joined(separator: ", ")))")
        }
        var replays: [Int: (Capture, ReplayPlan)] = [:]
        for timed in scenario.timeline {
            if plan.mode == .loopback, case .traffic(let step) = timed.step, step.family == .ipv6 {
                throw FleetPlan.PlanError(
                    description:
                        "\(timed.location): family ipv6, and loopback mode is IPv4 only (the machine has one IPv6 loopback address); run it with --mode netns (as root)"
                )
            }
        }
        for (index, timed) in scenario.timeline.enumerated() {
            guard case .replay(let step) = timed.step else { continue }
            let loaded = try Self.load(step, applications: plan.applications, at: timed.location)
            let ipv6 = loaded.1.flows.filter { !$0.captured.server.address.isIPv4 }.count
            if plan.mode == .loopback, ipv6 > 0 {
                throw FleetPlan.PlanError(
                    description:
                        "\(timed.location): \(ipv6) of the flows in \(step.capture) are IPv6, and loopback mode is IPv4 only; run it with --mode netns (as root), or leave them out with filter: ip"
                )
            }
            replays[index] = loaded
        }
        self.replays = replays
    }

    static func load(_ step: ReplayStep, applications: [Application], at location: SourceLocation) throws(FleetPlan.PlanError) -> (
        Capture, ReplayPlan
    ) {
        do {
            return try ReplayPlan.prepare(step, applications: applications)
        } catch {
            throw FleetPlan.PlanError(description: "\(location): \(error)")
        }
    }

    /// The drain period rotations use: the schedule's, else the first rotate step's, else 10 s.
    var drain: Duration {
        if let drain = scenario.rotation?.drain { return drain }
        for step in scenario.timeline { if case .rotate(let rotate) = step.step, let drain = rotate.drain { return drain } }
        return .seconds(10)
    }

    /// Record TTL: half the drain period when addresses rotate, so a client that honours it never
    /// holds an address past its retirement; 30 s otherwise.
    var ttl: UInt32 {
        let rotates =
            scenario.rotation != nil || scenario.timeline.contains { if case .rotate = $0.step { return true } else { return false } }
        guard rotates else { return 30 }
        return UInt32(max(1, min(30, Int(drain.seconds / 2))))
    }

    /// Runs the scenario. Cancelling the task stops it early; the report then says interrupted.
    public func run() async -> RunReport {
        let began = Date().timeIntervalSince1970
        let clock = ContinuousClock()
        let start = clock.now
        let network = Fleet.network(for: plan, dnsPort: options.dnsPort, pods: pods, say: options.say)
        var fleetOptions = Fleet.Options(
            executable: options.executable, scenarioPath: options.scenarioPath, say: options.say, nodeLog: options.nodeLog)
        fleetOptions.nodesPerProcess = options.nodesPerProcess
        fleetOptions.nodePods = pods
        let fleet = Fleet(plan: plan, network: network, options: fleetOptions, ttl: ttl)
        // The timeline changes the fleet through its controller, as the API and signals do; the
        // runner says each step itself.
        let controller = FleetController(fleet: fleet, given: scenario.applications, applicationsFile: nil, say: { _ in })
        var report = RunReport(scenario: scenario.name, mode: plan.mode.rawValue, outcome: .passed, started: began, durationSeconds: 0)
        var running: [(CaptureRequest, any HostCapture)] = []
        if plan.mode == .loopback {
            note(
                "loopback mode: the fabric answers TCP handshakes itself, so connect times do not include link latency; first-byte times do"
            )
            note("loopback mode: IPv4 only (the machine has one IPv6 loopback address)")
            let argo = plan.applications.filter(\.smartRouting).map(\.id)
            if !argo.isEmpty {
                note(
                    "loopback mode: smart routing measures real paths between edge namespaces, so here \(argo.joined(separator: ", ")) go straight to their origins; use netns mode"
                )
            }
        }
        do {
            options.say("starting \(plan.edgeNodes.count) edge nodes, \(scenario.topology.origins.count) origins and the DNS responder")
            try await fleet.start(drain: drain)
            startUsage.withLock { $0 = Self.usage(of: fleet) }
            for request in scenario.captures + options.captures {
                running.append((request, try fleet.network.startCapture(request)))
                options.say("capturing what crosses \(request.host) to \(request.file)")
            }
            options.say(
                "fleet up in \(String(format: "%.1f", (clock.now - start).seconds)) s; DNS at \(fleet.dnsEndpoint) (dig @\(fleet.dnsEndpoint.address) -p \(fleet.dnsEndpoint.port) NAME)"
            )
            for app in plan.applications {
                options.say(
                    "  \(app.id): \(app.dns.name) → \(fleet.book.addresses(of: app).map(\.description).joined(separator: ", ")) \(app.edge)"
                )
            }
            let played = clock.now
            var passes = 0
            repeat {
                passes += 1
                if options.duration != nil {
                    options.say(
                        String(
                            format: "pass %d of the timeline (%.0f s of %.0f s played)", passes, (clock.now - played).seconds,
                            options.duration!.seconds))
                }
                try await play(fleet, controller)
            } while options.duration.map({ clock.now - played < $0 }) ?? false
            if let duration = options.duration {
                note(
                    String(
                        format: "the timeline was played %@ over %.0f s (--duration %.0f s)", passes == 1 ? "once" : "\(passes) times",
                        (clock.now - played).seconds, duration.seconds))
            }
        } catch is CancellationError {
            report.outcome = .interrupted
            note("interrupted before the end")
        } catch let timeout as TimelineTimeout {
            // The checks still run on what was observed; the run cannot pass.
            report.outcome = .failed
            note("\(timeout)")
        } catch {
            report.outcome = .error
            note("error: \(error)")
        }
        await fleet.rotatorIfStarted?.waitForRetirements()
        await fleet.settleEvents()
        for (request, capture) in running {
            let summary = capture.stop()
            report.captures.append(RunReport.CaptureRow(host: request.host, summary: summary))
        }
        var observed = observations(fleet, began: began)
        for node in fleet.nodes.keys { observed.processOfNode[node] = fleet.processName(of: node) }
        let endUsage = Self.usage(of: fleet)
        let started = startUsage.withLock { $0 }
        for name in Set(started.keys).union(endUsage.keys) { observed.usage[name] = (started[name], endUsage[name]) }
        if let smartRouting = await fleet.smartRoutingSummary() { note(smartRouting) }
        let nodePIDs = fleet.nodePIDs
        await fleet.stop()
        observed.leftovers = Self.leftovers(nodePIDs: nodePIDs)

        report.durationSeconds = (clock.now - start).seconds
        report.checks = report.outcome == .error ? [] : ExpectationChecker(scenario: scenario, observed: observed).checks()
        if report.outcome == .passed, report.checks.contains(where: { !$0.passed }) { report.outcome = .failed }
        if Task.isCancelled, report.outcome != .error { report.outcome = .interrupted }
        report.traffic = summarize(observed)
        report.processes = observed.usage.keys.sorted().map { name in
            let (start, end) = observed.usage[name]!
            return RunReport.ProcessRow(name: name, start: start, end: end)
        }
        report.mail = summarizeMail(observed)
        report.replays = summarizeReplays(observed)
        report.rotations = observed.rotations.map {
            RunReport.Rotation(
                app: $0.app, old: $0.old, new: $0.new, publishedAt: $0.publishedAt - began, retiredAt: $0.retiredAt.map { $0 - began })
        }
        report.nodeDowns = fleet.nodeDowns.map {
            RunReport.NodeDown(node: $0.node, at: $0.time - began, backAt: $0.back.map { $0 - began })
        }
        report.nodeExits = fleet.nodeExits.map {
            RunReport.NodeExit(node: $0.node, status: $0.status, expected: $0.expected, at: $0.time - began)
        }
        note(fleet.network.summary)
        report.notes = notes.withLock { $0 }
        report.timeline = steps.withLock { $0 }.map { RunReport.TimelineEntry(at: $0.at - began, kind: $0.kind, text: $0.text) }
            .sorted { $0.at < $1.at }
        return report
    }

    /// The timeline: every step at its time, the rotation schedule alongside, until all traffic
    /// has finished (or the scenario's timeout).
    private func play(_ fleet: Fleet, _ controller: FleetController) async throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let deadline = t0 + scenario.timeout
        let trafficDone = Mutex(false)
        // Each client has its own resolver cache, asking from its own host.
        let names = Dictionary(
            uniqueKeysWithValues: scenario.topology.clients.map { client in
                (client.name, NameCache(client: DNSClient(server: fleet.dnsEndpoint, group: fleet.group(for: client.name))))
            })
        let progress = Task { [options] in
            while !Task.isCancelled {
                try await Task.sleep(for: options.progressEvery)
                options.say(self.progressLine(fleet, since: t0))
            }
        }
        defer { progress.cancel() }
        let schedule = Task {
            guard let rotation = scenario.rotation else { return }
            var next = t0 + rotation.every
            while !Task.isCancelled {
                try await Task.sleep(until: next)
                guard !trafficDone.withLock({ $0 }), clock.now < deadline else { return }
                for app in rotationApps(rotation.applications) {
                    try await self.rotate(app, fleet: fleet, controller: controller, drain: nil)
                }
                next += rotation.every
            }
        }
        defer { schedule.cancel() }
        let timeout = Task {
            try await Task.sleep(until: deadline)
            self.note("the scenario's timeout (\(self.scenario.timeout)) passed before the timeline finished")
        }
        defer { timeout.cancel() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, step) in scenario.timeline.enumerated() {
                group.addTask {
                    try await Task.sleep(until: t0 + step.at)
                    try await self.perform(step, index: index, fleet: fleet, controller: controller, names: names, deadline: deadline)
                }
            }
            group.addTask {
                // Ends the timeline at the timeout even if a step is still going.
                try await Task.sleep(until: deadline + .seconds(15))
                throw TimelineTimeout()
            }
            // Only steps return; the guard above only throws.
            var remaining = scenario.timeline.count
            while remaining > 0, try await group.next() != nil { remaining -= 1 }
            group.cancelAll()
        }
        trafficDone.withLock { $0 = true }
    }

    struct TimelineTimeout: Error, CustomStringConvertible {
        var description: String { "the timeline did not finish in time" }
    }

    private func perform(
        _ timed: TimedStep, index: Int, fleet: Fleet, controller: FleetController, names: [String: NameCache],
        deadline: ContinuousClock.Instant
    ) async throws {
        let at = String(format: "%5.1f s", timed.at.seconds)
        let mark = { (kind: String, text: String) in
            self.options.say("\(at)  \(text)")
            self.steps.withLock { $0.append(RunReport.TimelineEntry(at: Date().timeIntervalSince1970, kind: kind, text: text)) }
        }
        switch timed.step {
        case .traffic(let step):
            guard let app = plan.applications.first(where: { $0.id == step.application }) else { return }
            mark(
                "traffic",
                "traffic: \(step.clients.joined(separator: ", ")) → \(app.id), \(step.connections) \(app.edge.transport == .tcp ? "connections" : "flows") each"
            )
            await withTaskGroup(of: Void.self) { group in
                for client in step.clients {
                    guard let source = plan.hostAddresses[client], let names = names[client] else { continue }
                    let kind = exchange(for: app, from: client, zones: fleet.zones)
                    var request = TrafficGenerator.Request(
                        clientHost: client, source: source, sourceV6: plan.mode == .netns ? plan.hostAddressesV6[client] : nil, app: app,
                        step: step, exchange: kind, names: names, deadline: deadline)
                    if app.tls != .off {
                        // A certificate of the application's own is not checked: its CA is not the fleet's.
                        request.tls = .init(
                            caFile: app.tlsSettings.needsIssuedCertificate ? fleet.certificateAuthorityFile : nil, serverName: app.dns.name,
                            version: step.tlsVersion)
                    }
                    let generator = TrafficGenerator(group: fleet.group(for: client))
                    group.addTask {
                        _ = await generator.run(request) { result in self.results.withLock { $0.append(result) } }
                    }
                }
            }
        case .link(let step):
            mark("link", "link \(step.a)–\(step.b): \(describe(step.change))")
            try await controller.change(step)
        case .node(let step):
            mark("node", "node \(step.name): \(step.action.rawValue)")
            try await controller.node(step)
        case .origin(let step):
            mark("origin", "origin \(step.name): \(step.action.rawValue)")
            if try await !controller.origin(step) {
                options.say("\(at)  origin \(step.name) was running already: nothing to start")
            }
        case .rotate(let step):
            for app in rotationApps(step.applications) { try await rotate(app, fleet: fleet, controller: controller, drain: step.drain) }
        case .replay(let step):
            guard let (capture, replayPlan) = replays[index], let names = names[step.client] else { return }
            let speed = step.speed == 0 ? "as fast as possible" : step.speed == 1 ? "at the captured pace" : "at \(step.speed)× speed"
            mark(
                "replay",
                "replay \(URL(fileURLWithPath: step.capture).lastPathComponent): \(replayPlan.flows.count) flows from \(step.client), \(speed)"
            )
            let request = Replayer.Request(
                stepNumber: index + 1, step: step, capture: capture, plan: replayPlan, sourceV4: plan.hostAddresses[step.client],
                sourceV6: plan.mode == .netns ? plan.hostAddressesV6[step.client] : nil, names: names, dns: fleet.dnsEndpoint,
                applications: plan.applications, deadline: deadline)
            _ = await Replayer(group: fleet.group(for: step.client)).run(request) { result in
                self.replayed.withLock { $0.append(result) }
            }
        case .originName(let step):
            mark("originName", "origin name \(step.name) → \(step.origins.joined(separator: ", "))")
            await controller.originName(step)
        }
    }

    private func rotate(_ app: String, fleet: Fleet, controller: FleetController, drain: Duration?) async throws {
        let rotation = try await controller.rotate(app, drain: drain) { retired in await self.probe(retired, fleet: fleet) }
        options.say("rotated \(app): \(rotation.old.joined(separator: ", ")) → \(rotation.new.joined(separator: ", "))")
    }

    /// After the drain: a new connection to each old address must be refused.
    private func probe(_ rotation: AddressRotator.Rotation, fleet: Fleet) async {
        guard let app = plan.applications.first(where: { $0.id == rotation.app }), app.edge.transport == .tcp,
            let client = plan.scenario.topology.clients.first, let source = plan.hostAddresses[client.name]
        else { return }
        for text in rotation.old {
            guard let address = IPAddress(text) else { continue }
            let endpoint = Endpoint(address, app.edge.ports.first)
            var probe = Observations.Probe(app: app.id, address: endpoint.description, refused: true, detail: "refused")
            do {
                let channel = try await fleet.group(for: client.name).onLoop { loop in
                    ClientBootstrap(group: loop)
                        .connectTimeout(.seconds(2))
                        .bind(to: Endpoint(source, 0).socketAddress)
                        .connect(to: endpoint.socketAddress)
                }.get()
                try? await channel.close()
                probe.refused = false
                probe.detail = "accepted a new connection after the drain period"
            } catch {
                probe.detail = "\(error)"
            }
            probes.withLock { $0.append(probe) }
        }
    }

    private func rotationApps(_ listed: [String]) -> [String] {
        if !listed.isEmpty { return listed }
        return plan.applications.filter { if case .dynamic = $0.edgeIPs { return true } else { return false } }.map(\.id)
    }

    private func exchange(for app: Application, from client: String, zones: EdgeZones) -> ExchangeKind {
        guard case .direct(let origins) = scenario.application(app.id)?.origin, let first = origins.first,
            case .topologyHost(let host) = first.host, let spec = scenario.topology.origin(named: host)
        else { return app.edge.transport == .udp ? .echo : .anyReply }
        switch spec.kind {
        case .tcpEcho, .udpEcho: return .echo
        case .smtp, .postfix:
            // As a real MTA: EHLO with its own reverse-DNS name, mail to the application's name.
            let name = plan.hostName(client, in: zones).text
            return .mail(MailEnvelope(helo: name, from: "edgesim@\(name)", to: "postmaster@\(app.dns.name)"))
        case .http: return .http
        case .command: return app.edge.transport == .udp ? .echo : .anyReply
        }
    }

    private func describe(_ change: LinkStep.Change) -> String {
        switch change {
        case .cut: return "cut"
        case .restore: return "restored"
        case .set(let shape):
            var parts = ["latency \(RunReport.ms(shape.latency.seconds * 1000)) ms"]
            if shape.jitter > .zero { parts.append("jitter \(RunReport.ms(shape.jitter.seconds * 1000)) ms") }
            if shape.loss > 0 { parts.append("loss \(ExpectationChecker.percent(shape.loss))") }
            return parts.joined(separator: ", ")
        }
    }

    private func progressLine(_ fleet: Fleet, since t0: ContinuousClock.Instant) -> String {
        let done = results.withLock { $0 }
        let ok = done.filter(\.ok).count
        let up = plan.edgeNodes.filter { !fleet.router.isDown($0) }.count
        let rotations = fleet.rotatorIfStarted?.rotations.count ?? 0
        return String(
            format: "%5.1f s  %d done, %d ok, %d failed; %d/%d nodes up; %d rotations", (ContinuousClock.now - t0).seconds, done.count,
            ok, done.count - ok, up, plan.edgeNodes.count, rotations)
    }

    private func observations(_ fleet: Fleet, began: Double) -> Observations {
        var observed = Observations()
        observed.results = results.withLock { $0 }
        observed.replays = replayed.withLock { $0 }
        observed.events = fleet.events
        observed.rotations = fleet.rotatorIfStarted?.rotations ?? []
        observed.probes = probes.withLock { $0 }
        observed.hostAddresses = plan.hostAddresses
        observed.hostAddressesV6 = plan.hostAddressesV6
        observed.nodeDowns = fleet.nodeDowns
        observed.began = began
        for (name, origin) in fleet.origins {
            observed.clientsSeen[name] = origin.clientsSeen
            if origin.spec.kind == .smtp || origin.spec.kind == .postfix { observed.mail[name] = origin.mailOutcomes }
        }
        return observed
    }

    private func summarize(_ observed: Observations) -> [RunReport.Traffic] {
        let groups = Dictionary(grouping: observed.results) { "\($0.app)\u{0}\($0.client)" }
        return groups.values.map { results in
            let first = results[0]
            let connect = results.filter(\.ok).compactMap(\.connectMs).sorted()
            let firstByte = results.filter(\.ok).compactMap(\.firstByteMs).sorted()
            let addresses = observed.addresses(of: first.client)
            let served = observed.events.filter {
                $0.app == first.app && addresses.contains($0.client.address) && [.connect, .request, .clientFiltered].contains($0.event)
            }
            return RunReport.Traffic(
                app: first.app, client: first.client, transport: first.transport, attempted: results.count,
                succeeded: results.filter(\.ok).count, connectP50Ms: ExpectationChecker.percentile(connect, 0.5),
                connectP99Ms: ExpectationChecker.percentile(connect, 0.99), firstByteP50Ms: ExpectationChecker.percentile(firstByte, 0.5),
                firstByteP99Ms: ExpectationChecker.percentile(firstByte, 0.99),
                errors: Dictionary(grouping: results.compactMap(\.error), by: { $0 }).mapValues(\.count),
                families: Dictionary(grouping: results.filter(\.ok), by: { $0.address.hasPrefix("[") ? "ipv6" : "ipv4" }).mapValues(
                    \.count),
                servedBy: Dictionary(grouping: served, by: \.node).mapValues(\.count),
                relayed: Dictionary(grouping: served.filter { $0.via != nil }, by: { ([$0.node] + ($0.via ?? [])).joined(separator: "→") })
                    .mapValues(\.count),
                firstByteHistogram: RunReport.histogram(firstByte))
        }.sorted { ($0.app, $0.client) < ($1.app, $1.client) }
    }

    private func summarizeReplays(_ observed: Observations) -> [RunReport.Replay] {
        RunReport.Replay.rows(observed.replays) { step in replays[step - 1]?.1.skipped ?? [:] }
    }

    /// Memory and descriptors of every node process (named as `Fleet.processName(of:)`) and of this runner.
    static func usage(of fleet: Fleet) -> [String: ProcessUsage] {
        var usage: [String: ProcessUsage] = [:]
        for (name, node) in fleet.nodes {
            if let pid = node.pid, let found = ProcessUsage.of(pid) { usage[fleet.processName(of: name)] = found }
        }
        if let runner = ProcessUsage.of(getpid()) { usage["runner"] = runner }
        return usage
    }

    /// What this run left after its teardown: namespaces and resolver folders named for it,
    /// Postfix scratch folders, node processes still running.
    static func leftovers(nodePIDs: [Int32]) -> [String] {
        let prefix = "\(NamespaceNetwork.namePrefix)\(getpid())-"
        var found = NetworkNamespace.list().filter { $0.hasPrefix(prefix) }.map { "network namespace \($0)" }
        found += NetworkNamespace.listEtcFolders().filter { $0.hasPrefix(prefix) }.map { "resolver folder /etc/netns/\($0)" }
        let scratch = (try? FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)) ?? []
        found += scratch.filter {
            $0.hasPrefix("\(PostfixOrigin.folderPrefix)\(getpid())-") || $0.hasPrefix("\(FleetCertificates.folderPrefix)\(getpid())-")
        }
        .map { "scratch folder \($0)" }
        found += nodePIDs.filter { ProcessUsage.of($0) != nil }.map { "node process \($0)" }
        return found
    }

    /// Per mail origin and connecting address: how many messages were taken, and each refusal.
    private func summarizeMail(_ observed: Observations) -> [RunReport.MailRow] {
        var names: [IPAddress: String] = [:]
        for (host, address) in observed.hostAddresses { names[address] = host }
        for (host, address) in observed.hostAddressesV6 { names[address] = host }
        var rows: [RunReport.MailRow] = []
        for (origin, outcomes) in observed.mail {
            let kind = scenario.topology.origin(named: origin)?.kind.rawValue ?? ""
            let groups = Dictionary(grouping: outcomes) { outcome in
                let from = outcome.client.map { address in names[address].map { "\($0) [\(address)]" } ?? "[\(address)]" } ?? "unknown"
                return "\(from)\u{0}\(outcome.accepted ? "accepted" : outcome.reply)"
            }
            for (key, group) in groups {
                let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
                rows.append(RunReport.MailRow(origin: "\(origin) (\(kind))", from: parts[0], reply: parts[1], count: group.count))
            }
        }
        return rows.sorted { ($0.origin, $0.from, $0.reply) < ($1.origin, $1.from, $1.reply) }
    }

    private func note(_ text: String) {
        notes.withLock { $0.append(text) }
    }
}
