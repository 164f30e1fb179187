import EdgeModel

/// How one generated connection or UDP flow went.
public struct ConnectionResult: Sendable, Hashable, Codable {
    public var client: String
    public var app: String
    public var transport: String
    /// The application address it went to.
    public var address: String
    public var ok: Bool
    public var error: String?
    /// Seconds since the epoch.
    public var started: Double
    public var ended: Double
    /// Until the TCP connection was established (UDP: nil).
    public var connectMs: Double?
    /// Until the first byte came back from the far end.
    public var firstByteMs: Double?
    /// Kept open on purpose (`hold`), for the long-lived connection checks.
    public var held: Bool

    public init(
        client: String, app: String, transport: String, address: String, ok: Bool, error: String?, started: Double, ended: Double,
        connectMs: Double?, firstByteMs: Double?, held: Bool
    ) {
        self.client = client
        self.app = app
        self.transport = transport
        self.address = address
        self.ok = ok
        self.error = error
        self.started = started
        self.ended = ended
        self.connectMs = connectMs
        self.firstByteMs = firstByteMs
        self.held = held
    }
}

/// What the generator expects the origin to do, by the origin's kind.
public enum ExchangeKind: String, Sendable, Hashable {
    /// Send the bytes, get the same bytes back.
    case echo
    /// Read the `220` greeting, send commands, `QUIT`, read `221`.
    case smtp
    /// Send a GET, read a `200` status line.
    case http
    /// Send the bytes, get at least one byte back (a user's own origin).
    case anyReply
}
