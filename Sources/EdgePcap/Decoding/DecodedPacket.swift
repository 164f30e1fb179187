import EdgeModel

/// A TCP segment or UDP datagram read from one capture record (or from the fragments of one
/// IP datagram).
public struct DecodedPacket: Sendable, Hashable {
    public enum Transport: String, Sendable, Hashable {
        case tcp, udp
    }

    /// What the TCP header said; nil for UDP.
    public struct TCPHeader: Sendable, Hashable {
        public var sequence: UInt32
        public var acknowledgment: UInt32
        public var flags: UInt8

        public var syn: Bool { flags & 0x02 != 0 }
        public var fin: Bool { flags & 0x01 != 0 }
        public var rst: Bool { flags & 0x04 != 0 }
        public var ack: Bool { flags & 0x10 != 0 }

        public init(sequence: UInt32, acknowledgment: UInt32, flags: UInt8) {
            self.sequence = sequence
            self.acknowledgment = acknowledgment
            self.flags = flags
        }
    }

    /// The capture record it came from (1-based), the last one for a reassembled datagram.
    public var record: Int
    public var timestamp: Double
    public var transport: Transport
    public var source: Endpoint
    public var destination: Endpoint
    public var tcp: TCPHeader?
    /// The payload bytes that were captured.
    public var payload: [UInt8]
    /// Payload bytes the packet carried but the capture cut off (its snap length).
    public var missing: Int

    public init(
        record: Int, timestamp: Double, transport: Transport, source: Endpoint, destination: Endpoint, tcp: TCPHeader?,
        payload: [UInt8], missing: Int = 0
    ) {
        self.record = record
        self.timestamp = timestamp
        self.transport = transport
        self.source = source
        self.destination = destination
        self.tcp = tcp
        self.payload = payload
        self.missing = missing
    }
}

/// What became of one record.
public enum DecodeResult: Sendable, Hashable {
    case packet(DecodedPacket)
    /// An IP fragment, kept until its datagram is whole.
    case fragment
    /// Not TCP or UDP over IP (ARP, ICMP, ...): skipped, counted under this name.
    case skipped(String)
    /// The record contradicts its own headers; nothing of it is used.
    case malformed(String)
}
