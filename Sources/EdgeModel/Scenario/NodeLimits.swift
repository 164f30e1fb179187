/// What every edge node of a run holds at most, and how long it waits: `limits:` in a
/// scenario. Each has a default; a limit that is hit is an event and a count in the report.
public struct NodeLimits: Sendable, Hashable {
    /// TCP connections open at once on a node. Default 10,000.
    public var tcpConnections = 10_000
    /// TCP connections open at once for one application on a node. Default 5,000.
    public var tcpConnectionsPerApplication = 5_000
    /// A TCP connection with no byte either way for this long is closed. Default 300 s.
    public var tcpIdleTimeout: Duration = .seconds(300)
    /// Once half-closed, a TCP connection on which nothing moves for this long is closed. Default 30 s.
    public var tcpHalfClosedTimeout: Duration = .seconds(30)
    /// A header another edge sends first (smart routing) must be complete within this. Default 10 s.
    public var headerTimeout: Duration = .seconds(10)
    /// Connecting to an origin gives up after this. Default 5 s.
    public var connectTimeout: Duration = .seconds(5)
    /// UDP flows per listener; the least recently used goes. Default 10,000.
    public var udpFlows = 10_000
    /// A UDP flow with no datagram either way for this long is closed. Default 30 s.
    public var udpIdleTimeout: Duration = .seconds(30)
    /// DNS answers a second over UDP per client prefix (/24, /56) at each edge; over it, every
    /// second query is answered truncated and the rest dropped. Default 200/s; `off` (0) is none.
    public var dnsRate = 200
    /// Bytes a TCP connection may hold for a side that is not taking them (each direction):
    /// the node's own queue and the kernel's send buffer of the socket, each at most this;
    /// reading from the other side waits until they drain. Default (nil): a 256 KiB queue and
    /// the kernel's self-tuning send buffer (up to megabytes).
    public var bufferedBytes: Int?

    public init() {}

    static let keys = [
        "tcp_connections", "tcp_connections_per_app", "tcp_idle_timeout", "tcp_half_closed_timeout", "header_timeout",
        "connect_timeout", "udp_flows", "udp_idle_timeout", "dns_rate", "buffered_bytes",
    ]

    /// Reads `limits:`; every duration must be above zero.
    static func decode(_ fields: FieldReader) -> NodeLimits {
        var limits = NodeLimits()
        if let value = fields.int("tcp_connections", in: 1...10_000_000) { limits.tcpConnections = value }
        if let value = fields.int("tcp_connections_per_app", in: 1...10_000_000) { limits.tcpConnectionsPerApplication = value }
        if let value = fields.int("udp_flows", in: 1...10_000_000) { limits.udpFlows = value }
        if let value = fields.value("buffered_bytes", Quantity.byteCount) {
            if (4096...64 * 1024 * 1024).contains(value) {
                limits.bufferedBytes = Int(value)
            } else {
                fields.error("from 4KiB to 64MiB", field: "buffered_bytes")
            }
        }
        if let value = fields.value("dns_rate", { $0 == "off" ? .success(0) : Quantity.rate($0) }) {
            limits.dnsRate = Int(value.rounded(.up))
        }
        func positive(_ key: String) -> Duration? {
            guard let value = fields.duration(key) else { return nil }
            guard value > .zero else {
                fields.error("must be above zero", field: key)
                return nil
            }
            return value
        }
        if let value = positive("tcp_idle_timeout") { limits.tcpIdleTimeout = value }
        if let value = positive("tcp_half_closed_timeout") { limits.tcpHalfClosedTimeout = value }
        if let value = positive("header_timeout") { limits.headerTimeout = value }
        if let value = positive("connect_timeout") { limits.connectTimeout = value }
        if let value = positive("udp_idle_timeout") { limits.udpIdleTimeout = value }
        return limits
    }
}
