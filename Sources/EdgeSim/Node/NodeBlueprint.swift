import EdgeDNS
import EdgeModel
import EdgeProxy
import Logging
import NIOCore

/// One edge node of a fleet as its plan describes it: what it serves, under which rules and
/// limits, and how it measures paths. Worked out the same way by every process that runs it.
public struct NodeBlueprint: Sendable {
    public var name: String
    public var applications: [Application]
    public var accessRules: [AccessRule]
    public var prefixes: [PrefixInfo]
    public var configuration: ProxyConfiguration
    public var smartRouting: SmartRoutingConfiguration?

    public init(plan: FleetPlan, node: String, certificateFolder: String?) {
        name = node
        applications = plan.applications
        accessRules = plan.accessRules
        prefixes = plan.prefixes
        configuration = ProxyConfiguration(limits: plan.scenario.limits)
        configuration.certificateFolder = certificateFolder
        configuration.nodeName = node
        // On loopback, connections to origins leave from the node's own address, so the fabric
        // knows which edge-to-origin link they cross.
        if plan.mode == .loopback { configuration.originSourceIPv4 = plan.hostAddresses[node] }
        smartRouting = plan.smartRouting(for: node)
    }

    /// Applications whose edge TLS cannot work, each with why; empty when all can.
    public func unusableTLS() -> [String] {
        applications.filter { $0.tls != .off }.compactMap { app in
            do {
                _ = try EdgeTLS(app: app, issuedFolder: configuration.certificateFolder)
                return nil
            } catch {
                return "\(app.location.file):\(app.location.line): application \(app.id): \(error)"
            }
        }
    }

    /// The node, serving nothing until it is asked to (a fleet's nodes are given their
    /// addresses over the control channel), with every socket on `group`.
    public func makeNode(events: EventLog, resolver: Endpoint?, group: any EventLoopGroup, logger: Logger) -> EdgeNode {
        EdgeNode(
            applications: applications, listen: [], accessRules: accessRules, prefixes: prefixes, configuration: configuration,
            events: events,
            resolver: resolver.map { DNSOriginResolver(client: DNSClient(server: $0, group: group)) },
            smartRouting: smartRouting, group: group, logger: logger)
    }
}
