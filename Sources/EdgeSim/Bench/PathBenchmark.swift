import EdgeModel
import EdgeProxy
import EdgeRouting
import Foundation
import NIOCore

/// `edgesim bench paths`: starts a topology in netns mode with one smart-routed TCP application
/// per echo origin, lets the probes settle, then compares, for every (edge node, origin) pair,
/// the path each edge chose with the direct internet path and with the best the topology
/// allows, measures the chosen path for real, and cuts links on chosen paths to time how fast
/// new connections move.
public struct PathBenchmark: Sendable {
    public struct Options: Sendable {
        public var topologyPath: String
        public var executable: String
        /// How long probes run before the paths are read. Default 10 s.
        public var settle: Duration = .seconds(10)
        /// Links cut, one after another, on chosen paths. Default 0.
        public var cuts = 0
        /// Echo exchanges per pair on an open connection; their median is `measured_ms`. Default 5.
        public var exchanges = 5
        public var say: @Sendable (String) -> Void

        public init(topologyPath: String, executable: String, say: @escaping @Sendable (String) -> Void) {
            self.topologyPath = topologyPath
            self.executable = executable
            self.say = say
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let options: Options

    public init(options: Options) {
        self.options = options
    }

    public func run() async throws -> PathBenchmarkReport {
        let topology: Topology
        do {
            topology = try ConfigLoader().loadTopology(options.topologyPath).value
        } catch {
            throw Failure(description: error.issues.map(\.description).joined(separator: "\n"))
        }
        let origins = topology.origins.filter { $0.kind == .tcpEcho && !$0.ports.isEmpty }
        guard !origins.isEmpty else {
            throw Failure(description: "\(topology.name) has no tcp-echo origin to measure paths to")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-bench-paths-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let scenarioPath = directory.appendingPathComponent("paths.yaml").path
        try Self.scenarioText(topologyPath: URL(fileURLWithPath: options.topologyPath).path, origins: origins)
            .write(toFile: scenarioPath, atomically: true, encoding: .utf8)
        let scenario: Scenario
        do {
            scenario = try ConfigLoader().loadScenario(scenarioPath).value
        } catch {
            throw Failure(description: error.issues.map(\.description).joined(separator: "\n"))
        }
        let plan = try FleetPlan(scenario: scenario, mode: .netns)
        let say = options.say
        let network = NamespaceNetwork(plan: plan, say: say)
        let fleet = Fleet(
            plan: plan, network: network,
            options: .init(executable: options.executable, scenarioPath: scenarioPath, say: say, nodeLog: { _, _ in }), ttl: 30)
        do {
            try await fleet.start(drain: .seconds(5))
            let report = try await measure(fleet: fleet, plan: plan, origins: origins)
            await fleet.stop()
            return report
        } catch {
            await fleet.stop()
            throw error
        }
    }

    static func appID(_ origin: OriginSpec) -> String { "paths-\(origin.name)" }

    static func scenarioText(topologyPath: String, origins: [OriginSpec]) -> String {
        var text = "name: bench-paths\ntopology: '\(topologyPath.replacingOccurrences(of: "'", with: "''"))'\nmode: netns\napps:\n"
        for origin in origins {
            let port = origin.ports[0].first
            text += """
                  - id: \(appID(origin))
                    protocol: tcp/\(port)
                    dns: {type: CNAME, name: \(origin.name).paths.example}
                    origin_direct: ["tcp://\(origin.name):\(port)"]
                    proxy_protocol: "\(origin.proxyProtocol.rawValue)"
                    argo_smart_routing: true

                """
        }
        return text
    }

    private func measure(fleet: Fleet, plan: FleetPlan, origins: [OriginSpec]) async throws -> PathBenchmarkReport {
        let topology = plan.scenario.topology
        let interval = topology.smartRouting.probeInterval
        options.say("probes settle for \(options.settle) (every \(interval))")
        try await Task.sleep(for: options.settle)
        var table = PathTable(topology: topology)
        let origin = Dictionary(uniqueKeysWithValues: origins.map { (plan.hostAddresses[$0.name]!.description, $0.name) })
        // Every edge's choice as it stands now, read before any measuring traffic.
        var chosen: [(edge: String, origin: OriginSpec, via: [String])] = []
        var reports: [SmartRoutingReport] = []
        // Edges that do not announce (anycast exclusions) take no clients, so they have no pairs.
        for edge in plan.edgeNodes where topology.announces(edge) {
            guard let routes = await fleet.nodes[edge]?.smartRouting() else {
                throw Failure(description: "edge node \(edge) did not report its smart routing")
            }
            reports.append(routes)
            for route in routes.routes {
                guard let name = origin[route.destination], let spec = topology.origin(named: name) else { continue }
                chosen.append((edge, spec, route.via))
            }
        }
        // Then each chosen path measured for real, all pairs at once.
        let exchanges = options.exchanges
        let measured = await withTaskGroup(of: (Int, EchoProbe.Result?).self) { group in
            for (index, pair) in chosen.enumerated() {
                let target = appEndpoint(fleet, pair.origin)
                group.addTask { (index, try? await EchoProbe.run(fleet: fleet, from: pair.edge, to: target, exchanges: exchanges)) }
            }
            var results: [Int: EchoProbe.Result] = [:]
            for await (index, result) in group { results[index] = result }
            return results
        }
        var pairs: [PathBenchmarkReport.Pair] = []
        let overlay = table.overlay()
        for (index, pair) in chosen.enumerated() {
            let name = pair.origin.name
            let hops = [pair.edge] + pair.via + [name]
            guard let direct = overlay.roundTrip(pair.edge, name), let best = overlay.best(from: pair.edge, to: name),
                let chosenRTT = overlay.roundTrip(through: hops)
            else { continue }
            pairs.append(
                PathBenchmarkReport.Pair(
                    edge: pair.edge, origin: name, directMs: direct.ms, chosenMs: chosenRTT.ms, bestMs: best.roundTrip.ms,
                    measuredMs: measured[index]?.exchangeMs, firstByteMs: measured[index]?.firstByteMs, chosenPath: hops,
                    bestPath: best.hops, optimal: Self.isOptimal(chosenRTT, best: best.roundTrip)))
        }
        options.say("measured \(pairs.count) (edge, origin) pairs")
        var reroutes: [PathBenchmarkReport.Reroute] = []
        for cut in 0..<options.cuts {
            guard let reroute = try await cutAndTime(fleet: fleet, plan: plan, table: &table, pairs: pairs, origins: origins, index: cut)
            else {
                options.say("no further link whose cut changes a chosen path's best alternative")
                break
            }
            reroutes.append(reroute)
        }
        return PathBenchmarkReport(
            topology: topology.name, probeIntervalSeconds: interval.seconds, pairs: pairs, reroutes: reroutes, edges: reports)
    }

    private func appEndpoint(_ fleet: Fleet, _ origin: OriginSpec) -> Endpoint? {
        guard let app = fleet.plan.applications.first(where: { $0.id == Self.appID(origin) }),
            let address = fleet.book.addresses(of: app).first(where: \.isIPv4)
        else { return nil }
        return Endpoint(address, app.edge.ports.first)
    }

    /// Within max(1 ms, 2%) of the best: the benchmark's test of a choice.
    static func isOptimal(_ rtt: Duration, best: Duration) -> Bool { rtt.ms <= best.ms + max(1, best.ms * 0.02) + 1e-9 }

    /// Cuts a link on a chosen path such that the path is no longer optimal (the internet routes
    /// around the cut, so the old path still works, only slower), then times how long until the
    /// entry edge chooses an optimal path again, opening connections meanwhile.
    private func cutAndTime(
        fleet: Fleet, plan: FleetPlan, table: inout PathTable, pairs: [PathBenchmarkReport.Pair], origins: [OriginSpec], index: Int
    ) async throws -> PathBenchmarkReport.Reroute? {
        let interval = plan.scenario.topology.smartRouting.probeInterval
        let candidates = pairs.filter { $0.chosenPath.count > 2 } + pairs.filter { $0.chosenPath.count == 2 }
        var found: [(pair: PathBenchmarkReport.Pair, a: String, b: String, best: Duration)] = []
        var links: Set<[String]> = []
        search: for pair in candidates {
            for (a, b) in zip(pair.chosenPath, pair.chosenPath.dropFirst()) {
                try Task.checkCancellation()
                // Each cut on a link of its own, so one cut's recovery does not colour the next.
                guard plan.scenario.topology.link(between: a, b) != nil, !links.contains([a, b].sorted()) else { continue }
                var after = table
                after.cut(a, b)
                let overlay = after.overlay()
                guard let best = overlay.best(from: pair.edge, to: pair.origin)?.roundTrip else { continue }
                if let old = overlay.roundTrip(through: pair.chosenPath), Self.isOptimal(old, best: best) { continue }
                found.append((pair, a, b, best))
                links.insert([a, b].sorted())
                if found.count > index { break search }
                break
            }
        }
        guard index < found.count else { return nil }
        let (pair, a, b, best) = found[index]
        guard let spec = origins.first(where: { $0.name == pair.origin }), let target = appEndpoint(fleet, spec),
            let destination = plan.hostAddresses[pair.origin]?.description
        else { return nil }
        let before = pair.chosenPath
        options.say("cutting \(a)-\(b) on \(before.joined(separator: "→"))")
        try await fleet.change(LinkStep(a: a, b: b, change: .cut))
        table.cut(a, b)
        let started = ContinuousClock.now
        let limit = started + max(interval * 10, .seconds(5))
        // Connections go on back to back while the route is watched on its own: a connection
        // caught on the cut path can take seconds to fail, and must not delay seeing the move.
        let traffic = Task {
            var failed = 0
            while !Task.isCancelled, ContinuousClock.now < limit {
                let answered =
                    (try? await EchoProbe.run(fleet: fleet, from: pair.edge, to: target, exchanges: 1, timeout: .seconds(2))) != nil
                if !answered, !Task.isCancelled { failed += 1 }
            }
            return failed
        }
        var moved: Duration?
        var now: [String] = before
        while ContinuousClock.now < limit {
            if let routes = await fleet.nodes[pair.edge]?.smartRouting(),
                let route = routes.routes.first(where: { $0.destination == destination })
            {
                now = [pair.edge] + route.via + [pair.origin]
                if let rtt = table.roundTrip(through: now), Self.isOptimal(rtt, best: best) {
                    moved = ContinuousClock.now - started
                    break
                }
            }
            // Sampling the node's route table: a twentieth of a probe interval is the resolution.
            try await Task.sleep(for: interval / 20)
        }
        traffic.cancel()
        let failed = await traffic.value
        // Connections opened after the move must all work.
        var failedAfter = 0
        for _ in 0..<3 where moved != nil {
            if (try? await EchoProbe.run(fleet: fleet, from: pair.edge, to: target, exchanges: 1, timeout: .seconds(3))) == nil {
                failedAfter += 1
            }
        }
        try await fleet.change(LinkStep(a: a, b: b, change: .restore))
        table.reshape(a, b, to: nil)
        // The next cut starts from settled paths: wait until this edge is back on an optimal one.
        let back = ContinuousClock.now + interval * 10
        while ContinuousClock.now < back {
            try await Task.sleep(for: interval / 2)
            guard let routes = await fleet.nodes[pair.edge]?.smartRouting(),
                let route = routes.routes.first(where: { $0.destination == destination }),
                let rtt = table.roundTrip(through: [pair.edge] + route.via + [pair.origin]),
                let best = table.bestOverlayPath(from: pair.edge, to: pair.origin)?.roundTrip
            else { continue }
            if Self.isOptimal(rtt, best: best) { break }
        }
        return PathBenchmarkReport.Reroute(
            edge: pair.edge, origin: pair.origin, change: "cut \(a)-\(b)", before: before, after: now,
            secondsToMove: moved?.seconds, probeIntervals: moved.map { $0.seconds / interval.seconds },
            failedConnections: failed, failedAfterMove: failedAfter)
    }
}

extension Duration {
    var ms: Double { seconds * 1000 }
}
