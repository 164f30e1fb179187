import EdgeModel
import EdgeRouting
import NIOPosix
import Synchronization
import Testing

@testable import EdgeProxy

/// The node's routing state with a clock the test turns: what peers said goes stale, and a
/// relay that fails is dropped at once. No socket is opened.
@Suite struct SmartRouterTests {
    final class ManualClock: Sendable {
        private let now = Mutex(ContinuousClock.now)
        var instant: ContinuousClock.Instant { now.withLock { $0 } }
        func advance(by duration: Duration) { now.withLock { $0 += duration } }
    }

    let origin = Endpoint(IPAddress("198.18.0.9")!, 7000)

    func router(_ clock: ManualClock) -> SmartRouter {
        var configuration = SmartRoutingConfiguration(
            node: "a", address: IPAddress("198.18.0.1")!, peers: ["b": IPAddress("198.18.0.2")!], origins: [origin])
        configuration.interval = .seconds(1)
        configuration.warmConnections = 0
        return SmartRouter(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, clock: { clock.instant })
    }

    /// 300 ms straight, 40 + 50 ms through b: the router goes through b.
    func routedThroughB(_ clock: ManualClock) -> SmartRouter {
        let router = router(clock)
        let key = origin.address.description
        router.measured(key, rtt: .milliseconds(300))
        router.measured("b", rtt: .milliseconds(40))
        router.received([key: PathMeasurement(rtt: .milliseconds(50))], from: "b", bytes: 0)
        clock.advance(by: .milliseconds(200))
        router.measured("b", rtt: .milliseconds(40))
        #expect(router.route(to: origin.address) == ["b"])
        return router
    }

    @Test func whatAPeerSaidGoesStaleAfterThreeIntervals() {
        let clock = ManualClock()
        let router = routedThroughB(clock)
        // b stops telling; its last word is too old after three intervals, and a goes straight.
        clock.advance(by: .seconds(4))
        router.measured(origin.address.description, rtt: .milliseconds(300))
        #expect(router.route(to: origin.address) == [])
    }

    @Test func aRelayThatFailsIsDroppedAtOnce() {
        let clock = ManualClock()
        let router = routedThroughB(clock)
        router.relayFailed("b")
        #expect(router.route(to: origin.address) == [], "no waiting for the next probe or a tenth of an interval")
        #expect(router.report().counters.probesLost == 1)
    }
}
