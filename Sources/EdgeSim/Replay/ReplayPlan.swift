import EdgeModel
import EdgePcap

/// Which captured flows a replay step sends, and where: pure, so `edgesim pcap inspect` shows
/// the same mapping a run uses.
public struct ReplayPlan: Sendable {
    public enum Destination: Sendable, Hashable, CustomStringConvertible {
        /// An application, on this edge port.
        case application(id: String, port: UInt16)
        /// The fleet's DNS responder.
        case fleetDNS

        public var description: String {
            switch self {
            case .application(let id, let port): return "\(id):\(port)"
            case .fleetDNS: return ReplayStep.fleetDNS
            }
        }

        public var label: String {
            switch self {
            case .application(let id, _): return id
            case .fleetDNS: return ReplayStep.fleetDNS
            }
        }
    }

    public struct Flow: Sendable {
        /// 1-based, in the order flows began in the capture.
        public var number: Int
        public var captured: CapturedFlow
        public var destination: Destination
    }

    public var flows: [Flow] = []
    /// Flows left out, by reason.
    public var skipped: [String: Int] = [:]

    public init(capture: Capture, target: ReplayStep.Target, applications: [Application]) {
        for (index, flow) in capture.flows.enumerated() {
            switch Self.destination(of: flow, target: target, applications: applications) {
            case .success(let destination):
                flows.append(Flow(number: index + 1, captured: flow, destination: destination))
            case .failure(let reason):
                skipped[reason.description, default: 0] += 1
            }
        }
    }

    /// Why a replay step cannot run: the capture is bad, or none of its flows goes anywhere.
    public struct Unusable: Error, CustomStringConvertible {
        public var description: String
    }

    /// A replay step's capture read whole and its flows mapped, before anything starts: a bad
    /// capture stops a run (and fails validation) with its file and record number.
    public static func prepare(_ step: ReplayStep, applications: [Application]) throws(Unusable) -> (Capture, ReplayPlan) {
        let ports = Set(
            applications.filter { step.applications.contains($0.id) }.flatMap { app in app.edge.ports.first...app.edge.ports.last })
        let options = Capture.Options(serverPorts: ports, udpIdle: step.udpIdle.seconds, filter: step.filter)
        let capture: Capture
        do {
            capture = try Capture(file: step.capture, options: options)
        } catch {
            throw Unusable(description: error.description)
        }
        guard capture.records > 0 else {
            throw Unusable(description: "\(step.capture) holds no packets\(step.filter.map { " matching '\($0)'" } ?? "")")
        }
        let plan = ReplayPlan(capture: capture, target: step.target, applications: applications)
        guard !plan.flows.isEmpty else {
            let skipped = plan.skipped.map { "\($0.value) \($0.key)" }.sorted().joined(separator: "; ")
            throw Unusable(
                description:
                    "\(step.capture) has no flow to replay\(capture.flows.isEmpty ? " (no TCP or UDP flow in \(capture.records) records)" : ": \(skipped)")"
            )
        }
        return (capture, plan)
    }

    struct Skip: Error, CustomStringConvertible {
        var description: String
    }

    static func destination(of flow: CapturedFlow, target: ReplayStep.Target, applications: [Application]) -> Result<Destination, Skip> {
        let id: String
        switch target {
        case .application(let app):
            id = app
        case .ports(let map):
            guard let mapped = map[flow.server.port] else {
                return .failure(Skip(description: "\(flow.transport) port \(flow.server.port) is not in the map"))
            }
            id = mapped
        }
        if id == ReplayStep.fleetDNS { return .success(.fleetDNS) }
        guard let app = applications.first(where: { $0.id == id }) else { return .failure(Skip(description: "no application \(id)")) }
        guard app.edge.transport.rawValue == flow.transport.rawValue else {
            return .failure(Skip(description: "\(flow.transport) flows, and \(app.id) is \(app.edge.transport.rawValue)"))
        }
        let port = app.edge.ports.contains(flow.server.port) ? flow.server.port : app.edge.ports.first
        return .success(.application(id: app.id, port: port))
    }

    /// The application a flow would reach in a scenario: by transport and edge port, for
    /// `edgesim pcap inspect --scenario`.
    public static func application(for flow: CapturedFlow, among applications: [Application]) -> Application? {
        applications.first { $0.edge.transport.rawValue == flow.transport.rawValue && $0.edge.ports.contains(flow.server.port) }
    }
}
