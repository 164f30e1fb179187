import EdgeModel
import EdgeProxy

/// What a run saw, gathered for the checks: generated connections, the nodes' events, the
/// rotations, the probes of retired addresses and the client addresses the origins were told.
public struct Observations: Sendable {
    /// A connection attempt to an address after its drain period ended.
    public struct Probe: Sendable, Hashable {
        public var app: String
        public var address: String
        public var refused: Bool
        public var detail: String

        public init(app: String, address: String, refused: Bool, detail: String) {
            self.app = app
            self.address = address
            self.refused = refused
            self.detail = detail
        }
    }

    public var results: [ConnectionResult] = []
    /// Every replayed flow.
    public var replays: [ReplayResult] = []
    public var events: [Fleet.NodeEvent] = []
    public var rotations: [AddressRotator.Rotation] = []
    public var probes: [Probe] = []
    /// Per origin host: the port and client address of each header it read.
    public var clientsSeen: [String: [(port: UInt16, client: IPAddress)]] = [:]
    /// Per mail origin: how each transaction ended, as the origin saw it.
    public var mail: [String: [MailOutcome]] = [:]
    /// Nodes that stopped answering, and when they came back.
    public var nodeDowns: [Fleet.NodeDown] = []
    /// When the run began (seconds since the epoch), to show times from the start.
    public var began: Double = 0
    /// Memory and descriptors of each node process and of the runner ("runner"), when the fleet
    /// was up and at the end.
    public var usage: [String: (start: ProcessUsage?, end: ProcessUsage?)] = [:]
    /// The process each edge node runs in, as `usage` names it (its own name, or its node-host's).
    public var processOfNode: [String: String] = [:]
    /// What the run left once it was torn down (empty when nothing).
    public var leftovers: [String] = []
    /// Each host's address as the network saw it.
    public var hostAddresses: [String: IPAddress] = [:]
    public var hostAddressesV6: [String: IPAddress] = [:]

    public init() {}

    /// A host's addresses, IPv4 and IPv6, as the network saw them.
    public func addresses(of host: String) -> [IPAddress] {
        [hostAddresses[host], hostAddressesV6[host]].compactMap { $0 }
    }
}
