import EdgeModel
import EdgePcap
import NIOCore

/// How a fleet's hosts are connected on this machine: on loopback behind the fabric, or in
/// network namespaces joined by emulated links. The fleet asks it where each host's sockets live,
/// how node processes start, and tells it when nodes and links change.
public protocol FleetNetwork: Sendable {
    var router: FleetRouter { get }
    /// Makes the hosts and links.
    func start() async throws
    /// Where a host's own sockets are made (its origins, traffic, DNS).
    func group(for host: String) -> any EventLoopGroup
    /// The command line that runs `command` as a host's process.
    func processCommand(for host: String, _ command: [String]) -> [String]
    /// What every host's network namespace is named after (then the host's name); nil when
    /// hosts have none.
    var namespacePrefix: String? { get }
    /// Where the DNS responder listens (one per entry: the host whose network it is in) and
    /// the address clients query.
    var dnsListeners: [(host: String?, endpoint: Endpoint)] { get }
    var dnsEndpoint: Endpoint { get }
    /// The application address now takes traffic (after every node serves it).
    func openPublic(_ endpoint: Endpoint, transport: Transport) async throws
    /// The address takes no new traffic.
    func closePublic(_ address: IPAddress) async
    /// An origin stopped or started listening.
    func setOrigin(_ name: String, down: Bool) async throws
    /// A node went down or came back; anycast moves its clients.
    func setNode(_ name: String, down: Bool) async
    func change(_ step: LinkStep) async throws
    /// Starts writing what crosses a host to a pcapng file.
    func startCapture(_ request: CaptureRequest) throws -> any HostCapture
    /// One line for the report: what the links carried.
    var summary: String { get }
    /// What each link carried and lost so far (packets on emulated links; on loopback, the
    /// fabric's connections and flows, and datagrams lost, as one entry).
    var linkCounts: [LinkCount] { get }
    /// Removes everything it made.
    func stop() async
}

/// A capture being written; `stop` closes its file.
public protocol HostCapture: Sendable {
    func stop() -> LiveCapture.Summary
}

extension LiveCapture: HostCapture {}

/// What one link (or the loopback fabric) carried and lost.
public struct LinkCount: Sendable, Hashable {
    public var a: String
    public var b: String
    public var carried: Int
    public var lost: Int
}
