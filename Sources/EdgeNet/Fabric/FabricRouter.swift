import EdgeModel

/// Decides, for the fabric, where each new connection or flow goes and what the path to it is
/// like now. The fleet implements it from the topology's path table.
public protocol FabricRouter: Sendable {
    /// Where a connection from `client` to `destination` may go, first choice first; nil when
    /// the client is unknown or nothing is reachable.
    func route(from client: IPAddress, to destination: Endpoint) -> FabricRoute?
    /// The path between two hosts as it is now; nil once it is gone (a cut link, a host down).
    func shape(from clientHost: String, to targetHost: String) -> LinkShape?
}

public struct FabricRoute: Sendable, Hashable {
    public var clientHost: String
    public var targets: [FabricTarget]

    public init(clientHost: String, targets: [FabricTarget]) {
        self.clientHost = clientHost
        self.targets = targets
    }
}

/// One host a connection can be handed to: where to connect, from which address, across what.
public struct FabricTarget: Sendable, Hashable {
    public var host: String
    public var endpoint: Endpoint
    /// The address the fabric connects from: the client's own, so the target sees the client.
    public var source: IPAddress
    public var shape: LinkShape

    public init(host: String, endpoint: Endpoint, source: IPAddress, shape: LinkShape) {
        self.host = host
        self.endpoint = endpoint
        self.source = source
        self.shape = shape
    }
}
