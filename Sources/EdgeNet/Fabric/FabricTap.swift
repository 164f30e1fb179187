import EdgeModel
import NIOCore

/// Sees what the loopback fabric carries (for captures in loopback mode, where the fabric is
/// the network): each relayed connection or flow, then its bytes each way.
public protocol FabricTap: Sendable {
    /// A connection or flow begins; the sink hears what it carries, or nil when it is of no interest.
    func opened(_ relay: TappedRelay) -> (any TapSink)?
}

/// One connection or flow the fabric relays: the client's own leg to the public address, and
/// the fabric's leg to the target host (from the client's address).
public struct TappedRelay: Sendable, Hashable {
    public var transport: Transport
    public var clientHost: String
    public var targetHost: String
    public var client: Endpoint
    public var publicEndpoint: Endpoint
    public var fabricSource: Endpoint
    public var target: Endpoint
}

public protocol TapSink: Sendable {
    /// Bytes read from one side (a UDP datagram, or part of a TCP stream).
    func carried(_ bytes: ByteBuffer, towardsTarget: Bool)
    /// One side ended its output (TCP).
    func ended(towardsTarget: Bool)
}
