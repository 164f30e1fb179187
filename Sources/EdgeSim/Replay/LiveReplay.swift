import EdgeDNS
import EdgeModel
import EdgeNet
import EdgePcap
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `edgesim replay CAPTURE --to PID`: a capture replayed against a fleet `edgesim up` keeps
/// running, from one of its clients (inside that client's namespace in netns mode).
public struct LiveReplay: Sendable {
    public var fleet: RunningFleet
    public var step: ReplayStep

    public init(fleet: RunningFleet, step: ReplayStep) {
        self.fleet = fleet
        self.step = step
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Outcome: Sendable {
        public var rows: [RunReport.Replay]
        public var results: [ReplayResult]
        public var notes: [String]
        /// From the first flow's start to the last flow's end.
        public var seconds: Double

        /// Datagrams or writes sent and received, a second.
        public var packetsPerSecond: Double {
            seconds > 0 ? Double(results.reduce(0) { $0 + $1.sends + $1.receives }) / seconds : 0
        }
    }

    /// Checks everything that can be checked before a packet is sent: the fleet's description,
    /// the client, the applications, the capture.
    public func prepare() throws(Failure) -> (Scenario, FleetPlan, Capture, ReplayPlan) {
        let scenario: Scenario
        do {
            scenario = try fleet.description()
        } catch {
            throw Failure(description: "cannot read the fleet's description: \(error.issues.first?.description ?? "")")
        }
        guard let mode = FleetPlan.Mode(rawValue: fleet.mode) else { throw Failure(description: "unknown mode \(fleet.mode)") }
        let plan: FleetPlan
        do {
            plan = try FleetPlan(scenario: scenario, mode: mode)
        } catch {
            throw Failure(description: "\(error)")
        }
        guard scenario.topology.clients.contains(where: { $0.name == step.client }) else {
            let known = scenario.topology.clients.map(\.name).joined(separator: ", ")
            throw Failure(description: "'\(step.client)' is not a client of the fleet; its clients: \(known)")
        }
        for id in step.applications where !plan.applications.contains(where: { $0.id == id }) {
            let known = plan.applications.map(\.id).joined(separator: ", ")
            throw Failure(description: "the fleet runs no application '\(id)'; it runs: \(known.isEmpty ? "none" : known)")
        }
        let (capture, replayPlan): (Capture, ReplayPlan)
        do {
            (capture, replayPlan) = try ReplayPlan.prepare(step, applications: plan.applications)
        } catch {
            throw Failure(description: error.description)
        }
        if mode == .loopback, replayPlan.flows.contains(where: { !$0.captured.server.address.isIPv4 }) {
            throw Failure(description: "the capture has IPv6 flows and the fleet runs in loopback mode, which is IPv4 only")
        }
        return (scenario, plan, capture, replayPlan)
    }

    /// Replays the capture once, every flow to its end or to `timeout`.
    public func run(timeout: Duration = .seconds(300), say: @escaping @Sendable (String) -> Void) async throws(Failure) -> Outcome {
        let (_, plan, capture, replayPlan) = try prepare()
        guard let dns = Endpoint(fleet.dns) else { throw Failure(description: "the fleet's DNS '\(fleet.dns)' is not an address") }
        var owned: MultiThreadedEventLoopGroup?
        let group: any EventLoopGroup
        if plan.mode == .netns {
            // Sockets are made by threads inside the client's namespace.
            let namespace = NetworkNamespace("\(NamespaceNetwork.namePrefix)\(fleet.pid)-\(step.client)")
            do {
                owned = try namespace.eventLoopGroup()
            } catch {
                throw Failure(description: "cannot enter \(namespace.name): \(error)")
            }
            group = owned!
        } else {
            group = MultiThreadedEventLoopGroup.singleton
        }
        let names = NameCache(client: DNSClient(server: dns, group: group))
        let request = Replayer.Request(
            stepNumber: 1, step: step, capture: capture, plan: replayPlan, sourceV4: plan.hostAddresses[step.client],
            sourceV6: plan.mode == .netns ? plan.hostAddressesV6[step.client] : nil, names: names, dns: dns,
            applications: plan.applications, deadline: .now + timeout)
        say("replaying \(replayPlan.flows.count) flows of \(URL(fileURLWithPath: step.capture).lastPathComponent) from \(step.client)")
        let done = Counter()
        let began = ContinuousClock.now
        let results = await Replayer(group: group).run(request) { result in
            let count = done.add()
            if count % 100 == 0 { say("\(count) of \(replayPlan.flows.count) flows done") }
        }
        let seconds = (ContinuousClock.now - began).seconds
        try? await owned?.shutdownGracefully()
        let rows = RunReport.Replay.rows(results) { _ in replayPlan.skipped }
        return Outcome(rows: rows, results: results, notes: capture.problems, seconds: seconds)
    }
}

/// A count shared by concurrent flows.
final class Counter: Sendable {
    private let value = Mutex(0)

    func add() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}
