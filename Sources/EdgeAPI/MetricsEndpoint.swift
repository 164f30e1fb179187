import EdgeSim
import Hummingbird
import NIOCore
import Prometheus

/// `/metrics` in Prometheus's text format: the fleet's metrics (`FleetMetrics`), brought up to
/// date at each scrape.
public struct MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let metrics: FleetMetrics

    public init() {
        registry = PrometheusCollectorRegistry()
        let factory = DescribedPrometheusFactory(
            registry: registry, descriptions: FleetMetrics.descriptions,
            // Seconds, from a millisecond to two minutes: connections of a test fleet.
            durationBuckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(120),
            ],
            valueBuckets: [1, 10, 100, 1000, 10_000, 100_000])
        metrics = FleetMetrics(factory: factory)
    }

    /// The text a scrape gets.
    public func scrape(_ fleet: Fleet) async -> [UInt8] {
        await metrics.refresh(fleet)
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return bytes
    }

    func add(to router: Router<BasicRequestContext>, fleet: Fleet) {
        router.get("/metrics") { _, _ in
            let text = await scrape(fleet)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}
