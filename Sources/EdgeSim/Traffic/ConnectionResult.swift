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
    /// The reply with which a mail origin refused the message (4xx/5xx), when it did.
    public var refusal: String?
    /// The TLS version negotiated with the edge ("TLSv1.3"), for applications with edge TLS.
    public var tlsVersion: String?
    /// The HTTP status the response had, for HTTP exchanges.
    public var httpStatus: Int?
    /// The headers the origin said it received (the built-in http origin lists them in its
    /// answer), names lowercased; nil when the answer listed none.
    public var headersSeen: [String: String]?

    public init(
        client: String, app: String, transport: String, address: String, ok: Bool, error: String?, started: Double, ended: Double,
        connectMs: Double?, firstByteMs: Double?, held: Bool, refusal: String? = nil
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
        self.refusal = refusal
    }
}

/// What the generator expects the origin to do, by the origin's kind.
public enum ExchangeKind: Sendable, Hashable {
    /// Send the bytes, get the same bytes back.
    case echo
    /// One mail transaction in lock step: greeting, EHLO, MAIL, RCPT, DATA, the message, QUIT.
    case mail(MailEnvelope)
    /// Send a GET, read a `200` status line.
    case http
    /// Send the bytes, get at least one byte back (a user's own origin).
    case anyReply
}

/// Who a generated message claims to be from and to.
public struct MailEnvelope: Sendable, Hashable {
    /// The client's name in EHLO (its reverse-DNS name, as a real MTA gives its own).
    public var helo: String
    public var from: String
    public var to: String

    public init(helo: String, from: String, to: String) {
        self.helo = helo
        self.from = from
        self.to = to
    }
}
