import EdgeDNS
import EdgeModel
import EdgeSim
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The fleet's HTTP API: Spectrum's paths under `/client/v4` (so Cloudflare's clients work with
/// only their base URL changed) and edgesim's own under `/edgesim/v1`. Every request needs the
/// bearer token. It changes the fleet only through its `FleetController`.
public struct APIServer: Sendable {
    public struct Configuration: Sendable {
        /// Where it listens. Default 127.0.0.1:8787.
        public var address: Endpoint = Endpoint(IPAddress("127.0.0.1")!, 8787)
        /// The token every request must carry as `Authorization: Bearer TOKEN`.
        public var token: String
        /// Largest request body accepted. Default 1 MiB.
        public var maxBody: Int = 1 << 20

        public init(address: Endpoint = Endpoint(IPAddress("127.0.0.1")!, 8787), token: String) {
            self.address = address
            self.token = token
        }
    }

    public let controller: FleetController
    public let configuration: Configuration
    /// Served at `/metrics` when given (the fleet counts into it from its start).
    public let metrics: MetricsEndpoint?

    public init(controller: FleetController, configuration: Configuration, metrics: MetricsEndpoint? = nil) {
        self.controller = controller
        self.configuration = configuration
        self.metrics = metrics
    }

    /// The API described in OpenAPI 3.1 (Sources/EdgeAPI/openapi.yaml).
    public static var openAPIDocument: [UInt8] { PackageResources.openapi_yaml }

    /// A token for an API started without one: 32 random hex digits.
    public static func generatedToken() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Serves until the task is cancelled or the service group shuts down; `onListening` learns
    /// the bound address (the port when 0 was asked for).
    public func run(onListening: @escaping @Sendable (Endpoint) -> Void = { _ in }) async throws {
        var logger = Logger(label: "edgesim.api")
        logger.logLevel = .critical
        let app = Hummingbird.Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.address.address.description, port: Int(configuration.address.port))),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { onListening(Endpoint(configuration.address.address, UInt16(port))) }
            },
            logger: logger)
        try await app.run()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: configuration.token))
        let spectrum = SpectrumRoutes(controller: controller, maxBody: configuration.maxBody)
        spectrum.add(to: router)
        FleetRoutes(controller: controller).add(to: router)
        metrics?.add(to: router, fleet: controller.fleet)
        Dashboard(controller: controller).add(to: router)
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.openAPIDocument)))
        }
        return router
    }
}

/// Answers with Cloudflare's envelope.
func envelope(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// Refuses every request without the fleet's bearer token, as Cloudflare's API does.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The dashboard's page holds no data; its stream, opened by EventSource (which sends no
        // headers), may carry the token in the query.
        if request.method == .get, request.uri.path == "/" { return try await next(request, context) }
        let queryToken = request.uri.path == Dashboard.streamPath ? request.uri.queryParameters.get("access_token") : nil
        guard request.headers[.authorization] == "Bearer \(token)" || queryToken == token else {
            return envelope(.unauthorized, SpectrumEnvelope.failure(.authentication, ["Authentication error"]))
        }
        return try await next(request, context)
    }
}
