import EdgeModel

/// What a PROXY protocol header (v1 or v2) tells the origin: who the client really is.
public struct ProxyHeader: Sendable, Hashable {
    public enum Command: UInt8, Sendable, Hashable {
        /// The connection was made by the proxy itself (health checks); no addresses.
        case local = 0
        case proxy = 1
    }

    public enum Transport: UInt8, Sendable, Hashable {
        case unspecified = 0
        case stream = 1
        case datagram = 2
    }

    public var command: Command
    public var transport: Transport
    /// nil for LOCAL, for v1 `UNKNOWN`, and for the v2 UNSPEC family.
    public var source: Endpoint?
    public var destination: Endpoint?
    /// v2 type-length-value extensions, in order.
    public var tlvs: [TLV]

    public struct TLV: Sendable, Hashable {
        public var type: UInt8
        public var value: [UInt8]

        public init(type: UInt8, value: [UInt8]) {
            self.type = type
            self.value = value
        }
    }

    public init(command: Command = .proxy, transport: Transport, source: Endpoint?, destination: Endpoint?, tlvs: [TLV] = []) {
        self.command = command
        self.transport = transport
        self.source = source
        self.destination = destination
        self.tlvs = tlvs
    }

    /// A PROXY header for a client seen at `source` arriving at `destination`. Both ends are put
    /// in one family: IPv4 when both are IPv4 (IPv4-mapped counts), otherwise IPv6 with IPv4 mapped.
    public static func proxied(transport: Transport, source: Endpoint, destination: Endpoint) -> ProxyHeader {
        let client = Endpoint(source.address.unmapped, source.port)
        let edge = Endpoint(destination.address.unmapped, destination.port)
        if client.address.isIPv4 == edge.address.isIPv4 {
            return ProxyHeader(transport: transport, source: client, destination: edge)
        }
        return ProxyHeader(
            transport: transport, source: Endpoint(.v6(client.address.mappedV6), client.port),
            destination: Endpoint(.v6(edge.address.mappedV6), edge.port))
    }
}

/// A header that is not what the protocol allows. Nothing after it may be processed.
public struct ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
