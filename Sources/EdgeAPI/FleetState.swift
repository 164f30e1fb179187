import EdgeModel
import EdgeSim
import Foundation

/// The fleet as the dashboard shows it, one JSON object: nodes, clients and origins with their
/// coordinates and state, links and whether they are cut or reshaped, applications with their
/// addresses and, for smart-routed ones, the paths nodes chose; counters per node and
/// application; and a timeline of rotations, changes, node exits and stalls.
enum FleetState {
    static func snapshot(_ controller: FleetController) async -> [String: Any] {
        let fleet = controller.fleet
        let topology = fleet.plan.scenario.topology
        let events = fleet.events
        var openByNode: [String: Int] = [:]
        var openByApp: [String: Int] = [:]
        var totalByNode: [String: Int] = [:]
        var totalByApp: [String: Int] = [:]
        var bytesByApp: [String: UInt64] = [:]
        for event in events {
            switch event.event {
            case .connect:
                openByNode[event.node, default: 0] += 1
                openByApp[event.app, default: 0] += 1
                totalByNode[event.node, default: 0] += 1
                totalByApp[event.app, default: 0] += 1
            case .disconnect:
                openByNode[event.node, default: 0] -= 1
                openByApp[event.app, default: 0] -= 1
                bytesByApp[event.app, default: 0] += event.bytesIn + event.bytesOut
            default: break
            }
        }
        func place(_ coordinates: Coordinates?) -> [String: Any] {
            coordinates.map { ["lat": $0.latitude, "lon": $0.longitude] } ?? [:]
        }
        // How each node's process last ended: stopped on purpose, or exited by itself.
        var ended: [String: Bool] = [:]
        for exit in fleet.nodeExits { ended[exit.node] = exit.expected }
        let nodes = topology.edgeNodes.map { spec -> [String: Any] in
            let process = fleet.nodes[spec.name]
            let running = process?.isRunning ?? false
            let state = running ? (fleet.router.isDown(spec.name) ? "down" : "up") : (ended[spec.name] == false ? "exited" : "stopped")
            return [
                "name": spec.name, "city": spec.city ?? "", "place": place(spec.coordinates), "state": state,
                "open": max(0, openByNode[spec.name] ?? 0), "connections": totalByNode[spec.name] ?? 0,
            ]
        }
        let clients = topology.clients.map { ["name": $0.name, "city": $0.city ?? "", "place": place($0.coordinates)] as [String: Any] }
        let origins = topology.origins.map { spec -> [String: Any] in
            ["name": spec.name, "kind": spec.kind.rawValue, "city": spec.city ?? "", "place": place(spec.coordinates)]
        }
        let links = topology.links.map { link -> [String: Any] in
            let now = fleet.router.shape(between: link.a, link.b)
            let state = now == nil ? "cut" : (now == link.shape ? "up" : "changed")
            let oneWay = (now ?? link.shape).latency.components
            let rtt = 2 * (Double(oneWay.seconds) * 1000 + Double(oneWay.attoseconds) / 1e15)
            return ["a": link.a, "b": link.b, "rtt_ms": rtt, "state": state]
        }
        var paths: [String: [[String: Any]]] = [:]
        for (name, node) in fleet.nodes.sorted(by: { $0.key < $1.key })
        where node.isRunning && !fleet.router.isDown(name) && fleet.plan.smartRouting(for: name) != nil {
            guard let report = await node.smartRouting() else { continue }
            paths[name] = report.routes.map { ["destination": $0.destination, "via": $0.via, "expected_ms": $0.expectedMs] }
        }
        let apps = await controller.applications.map { record -> [String: Any] in
            let app = record.app
            var object: [String: Any] = [
                "id": app.id, "name": app.dns.name, "protocol": app.edge.description, "smart_routing": app.smartRouting,
                "addresses": fleet.book.addresses(ofID: app.id).map(\.description), "open": max(0, openByApp[app.id] ?? 0),
                "connections": totalByApp[app.id] ?? 0, "bytes": bytesByApp[app.id] ?? 0,
            ]
            if app.smartRouting { object["paths"] = paths }
            return object
        }
        var timeline: [(Double, String, String)] = await controller.changes.map { ($0.time, "change", $0.text) }
        for rotation in fleet.rotatorIfStarted?.rotations ?? [] {
            timeline.append(
                (
                    rotation.publishedAt, "rotation",
                    "\(rotation.app): \(rotation.old.joined(separator: ", ")) → \(rotation.new.joined(separator: ", "))"
                ))
        }
        for exit in fleet.nodeExits {
            timeline.append(
                (exit.time, "exit", "node \(exit.node) exited with status \(exit.status)\(exit.expected ? "" : " (unexpected)")"))
        }
        for down in fleet.nodeDowns {
            timeline.append((down.time, "down", "node \(down.node) stopped answering"))
            if let back = down.back { timeline.append((back, "back", "node \(down.node) answers again")) }
        }
        timeline.sort { $0.0 < $1.0 }
        return [
            "name": topology.name, "mode": fleet.plan.mode.rawValue, "time": Date().timeIntervalSince1970, "nodes": nodes,
            "clients": clients, "origins": origins, "links": links, "apps": apps,
            "timeline": timeline.suffix(200).map { ["time": $0.0, "kind": $0.1, "text": $0.2] },
        ]
    }
}
