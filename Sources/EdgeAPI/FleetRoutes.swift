import EdgeModel
import EdgeSim
import Foundation
import Hummingbird
import NIOCore

/// edgesim's own paths under `/edgesim/v1`: the fleet's nodes, origins and rotations, and the
/// operations the timeline has (stop, start or kill a node, cut or restore a link, stop or
/// start an origin, rotate an application's addresses).
struct FleetRoutes: Sendable {
    let controller: FleetController

    func add(to router: Router<BasicRequestContext>) {
        router.get("/edgesim/v1/nodes") { _, _ in
            let fleet = controller.fleet
            let nodes = fleet.plan.edgeNodes.map { name -> [String: Any] in
                let process = fleet.nodes[name]
                let up = (process?.isRunning ?? false) && !fleet.router.isDown(name)
                return [
                    "name": name, "state": up ? "up" : ((process?.isRunning ?? false) ? "down" : "stopped"), "pid": process?.pid ?? 0,
                    "address": fleet.plan.hostAddresses[name]?.description ?? "",
                ]
            }
            return envelope(.ok, SpectrumEnvelope.success(nodes))
        }
        for action in ["stop", "start", "kill"] {
            router.post("/edgesim/v1/nodes/:name/\(action)") { _, context in
                let name = context.parameters.get("name") ?? ""
                return await perform { () throws(FleetController.Failure) -> Any in
                    switch action {
                    case "start": try await controller.startNode(name)
                    default: try await controller.stopNode(name, kill: action == "kill")
                    }
                    return ["name": name, "action": action]
                }
            }
        }
        router.get("/edgesim/v1/origins") { _, _ in
            let origins = controller.fleet.origins.sorted { $0.key < $1.key }.map { name, origin -> [String: Any] in
                ["name": name, "kind": origin.spec.kind.rawValue, "address": origin.address.description]
            }
            return envelope(.ok, SpectrumEnvelope.success(origins))
        }
        for action in ["stop", "start"] {
            router.post("/edgesim/v1/origins/:name/\(action)") { _, context in
                let name = context.parameters.get("name") ?? ""
                return await perform { () throws(FleetController.Failure) -> Any in
                    if action == "stop" { try await controller.stopOrigin(name) } else { try await controller.startOrigin(name) }
                    return ["name": name, "action": action]
                }
            }
        }
        for action in ["cut", "restore"] {
            router.post("/edgesim/v1/links/:a/:b/\(action)") { _, context in
                let a = context.parameters.get("a") ?? ""
                let b = context.parameters.get("b") ?? ""
                return await perform { () throws(FleetController.Failure) -> Any in
                    try await controller.change(LinkStep(a: a, b: b, change: action == "cut" ? .cut : .restore))
                    return ["a": a, "b": b, "action": action]
                }
            }
        }
        router.get("/edgesim/v1/rotations") { _, _ in
            let rotations = controller.fleet.rotatorIfStarted?.rotations ?? []
            return envelope(.ok, SpectrumEnvelope.success(rotations.map(Self.object)))
        }
        router.post("/edgesim/v1/apps/:app_id/rotate") { _, context in
            let id = context.parameters.get("app_id") ?? ""
            return await perform { () throws(FleetController.Failure) -> Any in try await controller.rotate(id).map(Self.object) }
        }
        router.post("/edgesim/v1/rotate") { _, _ in
            await perform { () throws(FleetController.Failure) -> Any in try await controller.rotate().map(Self.object) }
        }
        router.get("/edgesim/v1/apps/:app_id/addresses") { _, context in
            let id = context.parameters.get("app_id") ?? ""
            guard await controller.application(id) != nil else {
                return envelope(.notFound, SpectrumEnvelope.failure(.unknownObject, ["no application has id '\(id)'"]))
            }
            return envelope(.ok, SpectrumEnvelope.success(await controller.addresses(of: id).map(\.description)))
        }
    }

    static func object(_ rotation: AddressRotator.Rotation) -> [String: Any] {
        var object: [String: Any] = [
            "app": rotation.app, "old": rotation.old, "new": rotation.new, "served_at": rotation.servedAt,
            "published_at": rotation.publishedAt,
        ]
        if let retired = rotation.retiredAt { object["retired_at"] = retired }
        return object
    }

    private func perform(_ body: () async throws(FleetController.Failure) -> Any) async -> Response {
        do {
            return envelope(.ok, SpectrumEnvelope.success(try await body()))
        } catch {
            switch error {
            case .notFound(let what): return envelope(.notFound, SpectrumEnvelope.failure(.unknownObject, [what]))
            case .invalid(let issues): return envelope(.badRequest, SpectrumEnvelope.failure(.invalidRequest, issues.map(\.message)))
            case .failed(let why): return envelope(.internalServerError, SpectrumEnvelope.failure(.failed, [why]))
            }
        }
    }
}
