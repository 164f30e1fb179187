import EdgeDNS
import EdgeModel
import EdgeSim
import Foundation
import Hummingbird
import NIOCore

/// `/client/v4/zones` and `/client/v4/zones/{zone_id}/spectrum/apps[/{app_id}]`, shaped as
/// Cloudflare's: the same paths, envelope, pagination and ordering.
struct SpectrumRoutes: Sendable {
    let controller: FleetController
    let maxBody: Int

    func add(to router: Router<BasicRequestContext>) {
        router.get("/client/v4/zones") { request, _ in await zones(request) }
        router.get("/client/v4/zones/:zone_id") { _, context in
            guard let zone = await zone(context) else { return unknownZone(context) }
            return envelope(.ok, SpectrumEnvelope.success(zone.object(nameServer: controller.fleet.zones.nameServer)))
        }
        router.get("/client/v4/zones/:zone_id/spectrum/apps") { request, context in await list(request, context) }
        router.post("/client/v4/zones/:zone_id/spectrum/apps") { request, context in await create(request, context) }
        router.get("/client/v4/zones/:zone_id/spectrum/apps/:app_id") { _, context in await show(context) }
        router.put("/client/v4/zones/:zone_id/spectrum/apps/:app_id") { request, context in await update(request, context) }
        router.delete("/client/v4/zones/:zone_id/spectrum/apps/:app_id") { _, context in await delete(context) }
        router.get("/client/v4/zones/:zone_id/spectrum/analytics/events/summary") { request, context in
            await analytics(request, context, bytime: false)
        }
        router.get("/client/v4/zones/:zone_id/spectrum/analytics/events/bytime") { request, context in
            await analytics(request, context, bytime: true)
        }
        router.get("/client/v4/zones/:zone_id/spectrum/analytics/aggregate/current") { request, context in
            guard let zone = await zone(context) else { return unknownZone(context) }
            let parameters = request.uri.queryParameters
            let apps = parameters.getAll("appID").flatMap { $0.split(separator: ",").map(String.init) }
            let colo = parameters.get("colo_name") ?? parameters.get("coloName")
            let events = await events(in: zone)
            return envelope(.ok, SpectrumEnvelope.success(currentAggregate(events, appIDs: apps, colo: colo)))
        }
    }

    /// The events the fleet has recorded of the zone's applications (deleted ones too).
    private func events(in zone: ServedZone) async -> [AnalyticsEvent] {
        let apps = Set(await controller.namesEverServed.filter { DNSName($0.value)?.isSubdomain(of: zone.name) ?? false }.keys)
        return controller.fleet.events.filter { apps.contains($0.app) }.map(AnalyticsEvent.init)
    }

    private func analytics(_ request: Request, _ context: BasicRequestContext, bytime: Bool) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        let parameters = request.uri.queryParameters
        let query: AnalyticsQuery
        do {
            query = try AnalyticsQuery(all: { parameters.getAll($0) }, bytime: bytime)
        } catch {
            return envelope(.badRequest, SpectrumEnvelope.failure(.invalidRequest, [error.description]))
        }
        let events = await events(in: zone)
        return envelope(.ok, SpectrumEnvelope.success(bytime ? query.byTime(events) : query.summary(events)))
    }

    private func zones(_ request: Request) async -> Response {
        var zones = ServedZone.all(controller.fleet)
        if let name = request.uri.queryParameters.get("name") { zones = zones.filter { $0.name.text == name.lowercased() } }
        let page = SpectrumEnvelope.Page(
            page: request.uri.queryParameters.get("page"), perPage: request.uri.queryParameters.get("per_page"))
        let (chosen, info) = page.slice(zones)
        let nameServer = controller.fleet.zones.nameServer
        return envelope(.ok, SpectrumEnvelope.success(chosen.map { $0.object(nameServer: nameServer) }, info: info))
    }

    private func zone(_ context: BasicRequestContext) async -> ServedZone? {
        let id = context.parameters.get("zone_id") ?? ""
        return ServedZone.all(controller.fleet).first { $0.id == id }
    }

    private func unknownZone(_ context: BasicRequestContext) -> Response {
        envelope(
            .notFound,
            SpectrumEnvelope.failure(
                .unknownObject, ["no zone has id '\(context.parameters.get("zone_id") ?? "")'; GET /client/v4/zones lists them"]))
    }

    private func list(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        var records = await controller.applications.filter { DNSName($0.app.dns.name)?.isSubdomain(of: zone.name) ?? false }
        let order = request.uri.queryParameters.get("order") ?? "created_on"
        func key(_ record: FleetController.ApplicationRecord) -> String {
            switch order {
            case "protocol": return record.app.edge.description
            case "app_id": return record.app.id
            case "modified_on": return Self.timestamp(record.modifiedOn)
            case "dns": return record.app.dns.name
            default: return Self.timestamp(record.createdOn)
            }
        }
        records.sort { key($0) < key($1) }
        if request.uri.queryParameters.get("direction") == "desc" { records.reverse() }
        let page = SpectrumEnvelope.Page(
            page: request.uri.queryParameters.get("page"), perPage: request.uri.queryParameters.get("per_page"))
        let (chosen, info) = page.slice(records)
        return envelope(.ok, SpectrumEnvelope.success(chosen.map(Self.object), info: info))
    }

    private func show(_ context: BasicRequestContext) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        guard let record = await application(context, in: zone) else { return unknownApplication(context) }
        return envelope(.ok, SpectrumEnvelope.success(Self.object(record)))
    }

    private func create(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        guard let body = await body(request) else { return tooLarge() }
        do {
            return envelope(.ok, SpectrumEnvelope.success(Self.object(try await controller.create(body, zone: zone.name))))
        } catch {
            return failed(error)
        }
    }

    private func update(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        guard await application(context, in: zone) != nil else { return unknownApplication(context) }
        guard let body = await body(request) else { return tooLarge() }
        do {
            let record = try await controller.update(context.parameters.get("app_id") ?? "", body, zone: zone.name)
            return envelope(.ok, SpectrumEnvelope.success(Self.object(record)))
        } catch {
            return failed(error)
        }
    }

    private func delete(_ context: BasicRequestContext) async -> Response {
        guard let zone = await zone(context) else { return unknownZone(context) }
        guard let record = await application(context, in: zone) else { return unknownApplication(context) }
        do {
            try await controller.delete(record.app.id)
            return envelope(.ok, SpectrumEnvelope.success(["id": record.app.id]))
        } catch {
            return failed(error)
        }
    }

    private func application(_ context: BasicRequestContext, in zone: ServedZone) async -> FleetController.ApplicationRecord? {
        guard let record = await controller.application(context.parameters.get("app_id") ?? "") else { return nil }
        return DNSName(record.app.dns.name)?.isSubdomain(of: zone.name) == true ? record : nil
    }

    private func unknownApplication(_ context: BasicRequestContext) -> Response {
        envelope(
            .notFound,
            SpectrumEnvelope.failure(.unknownObject, ["no application has id '\(context.parameters.get("app_id") ?? "")' in this zone"]))
    }

    private func body(_ request: Request) async -> [UInt8]? {
        guard let buffer = try? await request.body.collect(upTo: maxBody) else { return nil }
        return Array(buffer.readableBytesView)
    }

    private func tooLarge() -> Response {
        envelope(.contentTooLarge, SpectrumEnvelope.failure(.invalidRequest, ["the body is larger than \(maxBody) bytes"]))
    }

    private func failed(_ error: FleetController.Failure) -> Response {
        switch error {
        case .invalid(let issues):
            // The same messages as for a file, without the file's name.
            let messages = issues.map { issue in issue.field.isEmpty ? issue.message : "\(issue.field): \(issue.message)" }
            return envelope(.badRequest, SpectrumEnvelope.failure(.invalidRequest, messages))
        case .notFound(let what):
            return envelope(.notFound, SpectrumEnvelope.failure(.unknownObject, [what]))
        case .failed(let why):
            return envelope(.internalServerError, SpectrumEnvelope.failure(.failed, [why]))
        }
    }

    static func object(_ record: FleetController.ApplicationRecord) -> [String: Any] {
        var object = record.app.spectrumObject
        object["created_on"] = timestamp(record.createdOn)
        object["modified_on"] = timestamp(record.modifiedOn)
        return object
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
