import EdgeDNS
import EdgeModel
import EdgePcap
import Foundation
import NIOCore

/// Runs one replay step: every planned flow of the capture from one client, concurrently as
/// they were captured (at most `maxConcurrentFlows` at once), each at its captured time.
struct Replayer: Sendable {
    struct Request: Sendable {
        /// The step's place in the timeline, 1-based.
        var stepNumber: Int
        var step: ReplayStep
        var capture: Capture
        var plan: ReplayPlan
        var sourceV4: IPAddress?
        var sourceV6: IPAddress?
        var names: NameCache
        var dns: Endpoint
        var applications: [Application]
        /// No flow starts after this.
        var deadline: ContinuousClock.Instant
    }

    static let maxConcurrentFlows = 1024
    /// At speed 0 every flow is due at once: this many at a time keep the fleet's sockets from
    /// dropping a burst of first datagrams, and a finished flow lets the next one start.
    static let maxConcurrentFlowsAtFullSpeed = 64

    let group: any EventLoopGroup

    func run(_ request: Request, onResult: @escaping @Sendable (ReplayResult) -> Void) async -> [ReplayResult] {
        let step = request.step
        let replayer = FlowReplayer(group: group, settings: .init(speed: step.speed, compare: step.compare))
        let captureStart = request.capture.firstTime ?? 0
        // Every address is looked up before the clock starts, so lookups do not count as lateness.
        var targets: [String: Result<Endpoint, FlowReplayer.Failure>] = [:]
        for flow in request.plan.flows {
            let key = Self.key(flow)
            if targets[key] == nil { targets[key] = await target(of: flow, request) }
        }
        let origin = ContinuousClock.now
        return await withTaskGroup(of: ReplayResult.self) { tasks in
            var results: [ReplayResult] = []
            var running = 0
            for flow in request.plan.flows {
                let limit = step.speed == 0 ? Self.maxConcurrentFlowsAtFullSpeed : Self.maxConcurrentFlows
                if running >= limit, let done = await tasks.next() {
                    running -= 1
                    results.append(done)
                }
                let captured = flow.captured
                var result = ReplayResult(
                    step: request.stepNumber, capture: URL(fileURLWithPath: step.capture).lastPathComponent, client: step.client,
                    destination: flow.destination.label, transport: captured.transport.rawValue,
                    flow: "#\(flow.number) \(captured.client) → \(captured.server)", ok: false, error: nil)
                let source = captured.server.address.isIPv4 ? request.sourceV4 : request.sourceV6
                let target = targets[Self.key(flow)]!
                guard ContinuousClock.now < request.deadline, !Task.isCancelled else {
                    result.error = "not started before the scenario's timeout"
                    onResult(result)
                    results.append(result)
                    continue
                }
                running += 1
                tasks.addTask {
                    switch target {
                    case .failure(let failure):
                        result.error = failure.description
                    case .success(let endpoint):
                        if let source {
                            let schedule = ReplaySchedule(captured, captureStart: captureStart)
                            await replayer.replay(schedule, from: source, to: endpoint, origin: origin, result: &result)
                        } else {
                            result.error = "an IPv6 flow, and \(step.client) has no IPv6 address in this mode (netns mode gives one)"
                        }
                    }
                    onResult(result)
                    return result
                }
            }
            for await done in tasks { results.append(done) }
            return results
        }
    }

    private static func key(_ flow: ReplayPlan.Flow) -> String {
        "\(flow.destination) \(flow.captured.server.address.isIPv4 ? "A" : "AAAA")"
    }

    private func target(of flow: ReplayPlan.Flow, _ request: Request) async -> Result<Endpoint, FlowReplayer.Failure> {
        switch flow.destination {
        case .fleetDNS:
            return .success(request.dns)
        case .application(let id, let port):
            guard let app = request.applications.first(where: { $0.id == id }) else {
                return .failure(.init(description: "no application \(id)"))
            }
            let ipv6 = !flow.captured.server.address.isIPv4
            do {
                let addresses = try await request.names.addresses(of: app.dns.name, ipv6: ipv6)
                guard let first = addresses.first else { return .failure(.init(description: "\(app.dns.name) did not resolve")) }
                return .success(Endpoint(first, port))
            } catch {
                return .failure(.init(description: "resolving \(app.dns.name) (\(ipv6 ? "AAAA" : "A")): \(error)"))
            }
        }
    }
}
