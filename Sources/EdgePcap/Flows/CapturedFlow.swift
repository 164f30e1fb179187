import EdgeModel

/// One connection or UDP conversation found in a capture: who opened it, what each side sent
/// (TCP streams in order, UDP datagrams as they came) and when.
public struct CapturedFlow: Sendable, Hashable {
    public enum Direction: String, Sendable, Hashable {
        case toServer, toClient
    }

    public struct Message: Sendable, Hashable {
        public var direction: Direction
        /// Capture time of the packet that carried these bytes.
        public var time: Double
        public var record: Int
        public var bytes: [UInt8]
    }

    public enum Ending: String, Sendable, Hashable {
        /// A FIN was seen from both sides.
        case closed
        case reset
        /// Still open when the capture ended (or UDP, which has no end but silence).
        case open
    }

    public var transport: DecodedPacket.Transport
    public var client: Endpoint
    public var server: Endpoint
    public var firstTime: Double
    public var lastTime: Double
    public var packetsToServer = 0
    public var packetsToClient = 0
    public var messages: [Message] = []
    /// Holes in a TCP stream that the capture never filled (lost by the capture, not the network).
    public var gaps: [String] = []
    public var retransmissions = 0
    /// The capture began after the connection had opened; its bytes are taken from the first seen.
    public var startedBeforeCapture = false
    public var ending: Ending = .open
    /// Which side was taken as the client, and why (a SYN, or a guess from the ports).
    public var clientFrom: String

    public var bytesToServer: Int { messages.lazy.filter { $0.direction == .toServer }.reduce(0) { $0 + $1.bytes.count } }
    public var bytesToClient: Int { messages.lazy.filter { $0.direction == .toClient }.reduce(0) { $0 + $1.bytes.count } }
    public var duration: Double { lastTime - firstTime }

    /// What the client sent, in order.
    public var sent: [Message] { messages.filter { $0.direction == .toServer } }
    /// What the server sent back, in order.
    public var replies: [Message] { messages.filter { $0.direction == .toClient } }
}
