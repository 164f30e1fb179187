/// What replaying one captured flow means: when each of the client's sends is due (seconds
/// after the capture's first record), how much of the server's reply had arrived before it in
/// the capture, and the replies to expect.
public struct ReplaySchedule: Sendable, Hashable {
    public struct Send: Sendable, Hashable {
        /// Seconds after the capture began.
        public var at: Double
        public var bytes: [UInt8]
        /// Reply bytes (TCP) or datagrams (UDP) the client had received before this send.
        public var afterReplies: Int
    }

    /// Seconds after the capture began that the flow opened.
    public var start: Double
    public var sends: [Send] = []
    /// TCP: the server's bytes in order; UDP: one entry per datagram.
    public var replies: [[UInt8]] = []
    public var isStream: Bool

    /// Reply bytes (TCP) or datagrams (UDP) in all.
    public var expectedReplies: Int { isStream ? replies.reduce(0) { $0 + $1.count } : replies.count }

    public init(_ flow: CapturedFlow, captureStart: Double) {
        start = flow.firstTime - captureStart
        isStream = flow.transport == .tcp
        var received = 0
        for message in flow.messages {
            switch message.direction {
            case .toServer:
                sends.append(Send(at: message.time - captureStart, bytes: message.bytes, afterReplies: received))
            case .toClient:
                replies.append(message.bytes)
                received += isStream ? message.bytes.count : 1
            }
        }
    }

    /// When a time in the capture falls in a replay that began at `origin` (seconds on the same
    /// clock) and runs `speed` times faster; speed 0 is as fast as possible: everything at once.
    public static func due(_ captureTime: Double, origin: Double, speed: Double) -> Double {
        speed == 0 ? origin : origin + captureTime / speed
    }
}
