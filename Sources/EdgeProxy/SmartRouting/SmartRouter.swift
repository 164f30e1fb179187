import EdgeModel
import EdgeRouting
import NIOCore
import Synchronization

/// Where a node's smart routing measures and relays. Every value but the addresses has a
/// documented default.
public struct SmartRoutingConfiguration: Sendable {
    /// This node's name, as its peers know it.
    public var node: String
    /// This node's own address: probes are answered and relayed connections accepted there.
    public var address: IPAddress
    /// The port for both (UDP probes, TCP relays). Default 7301.
    public var port: UInt16 = 7301
    /// The other edge nodes and their addresses.
    public var peers: [String: IPAddress]
    /// TCP origins of smart-routed applications; each is probed by connecting to it.
    public var origins: [Endpoint]
    /// UDP origins of smart-routed applications; each is probed with a datagram, framed as its
    /// applications frame theirs, and timed to the first reply.
    public var udpOrigins: [UDPProbeTarget] = []
    /// How often every peer and origin is probed. Default 1 s.
    public var interval: Duration = .seconds(1)
    /// Idle connections kept open to each peer a chosen path starts with, per event loop, so a
    /// relayed connection needs no handshake of its own. Default 2.
    public var warmConnections = 2
    public var choice = PathChooser.Settings()

    public init(node: String, address: IPAddress, peers: [String: IPAddress], origins: [Endpoint]) {
        self.node = node
        self.address = address
        self.peers = peers
        self.origins = origins
    }

    /// Every destination paths are chosen for: the origins' addresses.
    var destinations: [IPAddress] {
        var seen: Set<IPAddress> = []
        return (origins.map(\.address) + udpOrigins.map(\.endpoint.address)).filter { seen.insert($0).inserted }
    }

    /// A probe with no answer after this long counts as lost: one interval, at least 1 s.
    var probeTimeout: Duration { max(interval, .seconds(1)) }
}

/// A UDP origin to probe, and the header its applications put in front of every datagram.
public struct UDPProbeTarget: Sendable, Hashable {
    public var endpoint: Endpoint
    public var proxyProtocol: ProxyProtocolMode

    public init(endpoint: Endpoint, proxyProtocol: ProxyProtocolMode) {
        self.endpoint = endpoint
        self.proxyProtocol = proxyProtocol
    }
}

/// A node's smart routing: what it measured, what its peers told it, the path chosen towards
/// each origin, and the warm connections to the relays those paths start with.
public final class SmartRouter: Sendable {
    public struct Counters: Sendable, Hashable, Codable {
        public var probesSent = 0
        public var probesAnswered = 0
        public var probesLost = 0
        public var probeBytes = 0
        public var relayedIn = 0
        public var relayRefused = 0
        /// Relay connections whose header did not complete in time.
        public var relayHeaderTimeouts = 0
    }

    private struct State {
        var estimators: [String: RTTEstimator] = [:]
        var peerTables: [String: (table: [String: PathMeasurement], at: ContinuousClock.Instant)] = [:]
        var chooser: PathChooser
        var counters = Counters()
        /// When the paths were last chosen, and whether anything changed since.
        var chosenAt: ContinuousClock.Instant?
        var stale = true
        var toldPeersAt: ContinuousClock.Instant?
    }

    public let configuration: SmartRoutingConfiguration
    let pool: RelayPool
    private let state: Mutex<State>
    private let clock: @Sendable () -> ContinuousClock.Instant

    public init(
        configuration: SmartRoutingConfiguration, group: any EventLoopGroup,
        clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.configuration = configuration
        self.clock = clock
        pool = RelayPool(
            port: configuration.port, source: configuration.address, peers: configuration.peers, group: group,
            size: configuration.warmConnections)
        state = Mutex(State(chooser: PathChooser(entry: configuration.node, settings: configuration.choice)))
    }

    static func key(_ address: IPAddress) -> String { address.description }

    /// Where a peer takes probes and relayed traffic.
    func endpoint(of peer: String) -> Endpoint? {
        configuration.peers[peer].map { Endpoint($0, configuration.port) }
    }

    /// The relays a connection to `address` goes through now (empty: straight); nil when
    /// `address` is not a measured origin.
    public func route(to address: IPAddress) -> [String]? {
        state.withLock { $0.chooser.current[Self.key(address)]?.via }
    }

    /// What this node measures now, as it tells its peers.
    public func table() -> [String: PathMeasurement] {
        state.withLock { state in state.estimators.compactMapValues(\.measurement) }
    }

    func probeSent(bytes: Int) {
        state.withLock {
            $0.counters.probesSent += 1
            $0.counters.probeBytes += bytes
        }
    }

    func count(_ body: (inout Counters) -> Void) { state.withLock { body(&$0.counters) } }

    /// What a probe result asks of the prober.
    struct Followup: Equatable {
        /// The sample was out of the ordinary: probe the target again now to confirm it.
        var probeAgain = false
        /// What this node measures changed for real: tell the peers now, not when they next ask.
        var tellPeers = false
    }

    /// A probe to `target` (a peer's name, or an origin's address) was answered after `rtt`, or
    /// lost when `rtt` is nil.
    @discardableResult
    func measured(_ target: String, rtt: Duration?) -> Followup {
        let (warm, followup): ([String], Followup) = state.withLock { state in
            var estimator = state.estimators[target] ?? RTTEstimator()
            let before = estimator.measurement
            if let rtt {
                estimator.answered(after: rtt)
                state.counters.probesAnswered += 1
            } else {
                estimator.lost()
                state.counters.probesLost += 1
            }
            state.estimators[target] = estimator
            let after = estimator.measurement
            let answering = before?.answering != after?.answering
            let shifted = before != nil && (answering || (before.map { Self.moved($0.rtt, after?.rtt) } ?? false))
            state.stale = true
            let now = clock()
            // Peers hear of a change at once, but not more than twice an interval.
            let tell = shifted && (state.toldPeersAt.map { now - $0 >= configuration.interval / 2 } ?? true)
            if tell { state.toldPeersAt = now }
            return (rechoose(&state, urgent: answering), Followup(probeAgain: estimator.isUnconfirmed, tellPeers: tell))
        }
        for peer in warm { pool.warm(peer) }
        return followup
    }

    /// A relayed connection could not be opened through `peer`: it counts as a lost probe, so
    /// paths through it are dropped at once.
    func relayFailed(_ peer: String) {
        measured(peer, rtt: nil)
    }

    /// A change worth telling peers at once: more than 3% and 1 ms.
    private static func moved(_ before: Duration, _ after: Duration?) -> Bool {
        guard let after else { return true }
        let change = before > after ? before - after : after - before
        return change > .milliseconds(1) && change > before * 3 / 100
    }

    /// A peer's table arrived, with a reply or as an update.
    func received(_ table: [String: PathMeasurement], from peer: String, bytes: Int) {
        let warm: [String] = state.withLock { state in
            let lostSegment =
                state.peerTables[peer].map { old in
                    old.table.contains { key, measurement in measurement.answering && table[key]?.answering == false }
                } ?? false
            state.peerTables[peer] = (table, clock())
            state.counters.probeBytes += bytes
            state.stale = true
            return rechoose(&state, urgent: lostSegment)
        }
        for peer in warm { pool.warm(peer) }
    }

    /// Chooses again for every origin when something changed and the last choice is a tenth of
    /// an interval old (at once when a segment stopped answering); returns the first relays of
    /// the chosen paths, whose warm connections should be kept.
    private func rechoose(_ state: inout State, urgent: Bool) -> [String] {
        let now = clock()
        guard state.stale, urgent || state.chosenAt.map({ now - $0 >= configuration.interval / 10 }) ?? true else { return [] }
        state.stale = false
        state.chosenAt = now
        let fresh = state.peerTables.filter { now - $0.value.at <= configuration.interval * 3 }.mapValues(\.table)
        let local = state.estimators.compactMapValues(\.measurement)
        var firstHops: Set<String> = []
        for destination in configuration.destinations {
            if let choice = state.chooser.choose(Self.key(destination), local: local, peers: fresh), let first = choice.via.first {
                firstHops.insert(first)
            }
        }
        return firstHops.sorted()
    }

    /// For the control channel and benchmarks.
    public func report() -> SmartRoutingReport {
        state.withLock { state in
            SmartRoutingReport(
                node: configuration.node, probeIntervalSeconds: configuration.interval.secondsValue,
                routes: state.chooser.current.map {
                    SmartRoutingReport.Route(
                        destination: $0.key, via: $0.value.via, expectedMs: $0.value.expected.millisecondsValue,
                        rttMs: $0.value.rtt.millisecondsValue)
                }.sorted { $0.destination < $1.destination },
                measurements: state.estimators.compactMap { key, estimator in
                    estimator.measurement.map {
                        SmartRoutingReport.Measurement(
                            target: key, rttMs: $0.rtt.millisecondsValue, loss: $0.loss, answering: $0.answering)
                    }
                }.sorted { $0.target < $1.target },
                counters: state.counters)
        }
    }

    func close() async { await pool.close() }
}

/// A node's smart routing as it reports it.
public struct SmartRoutingReport: Sendable, Hashable, Codable {
    public struct Route: Sendable, Hashable, Codable {
        public var destination: String
        public var via: [String]
        public var expectedMs: Double
        public var rttMs: Double
    }

    public struct Measurement: Sendable, Hashable, Codable {
        public var target: String
        public var rttMs: Double
        public var loss: Double
        public var answering: Bool
    }

    public var node: String
    public var probeIntervalSeconds: Double
    public var routes: [Route]
    public var measurements: [Measurement]
    public var counters: SmartRouter.Counters
}

extension Duration {
    var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var millisecondsValue: Double { secondsValue * 1000 }
}
