import EdgeModel
import EdgeProxy
import Foundation

/// The messages between the runner and a node process, one JSON object a line: requests on the
/// node's standard input; replies, events and readiness on its standard output.
public enum NodeControl {
    public struct Request: Codable, Sendable, Equatable {
        public enum Operation: String, Codable, Sendable {
            case serve
            case retire
            /// What smart routing measures and chose (`app` and `addresses` unused).
            case routes
            /// Are you there? Answered at once (liveness).
            case ping
            /// Serve exactly these addresses for the app: open the missing, retire the others
            /// (a node that was unreachable catching up).
            case reconcile
            /// Add or change an application (`application`: its Spectrum object as JSON); the
            /// addresses it is served on are asked for with `serve`.
            case define
            /// Stop serving an application everywhere and forget it.
            case remove
            /// node-host only: start the node named in `node` (again, after a stop or kill).
            case start
            /// node-host only: close the node's listeners, let its connections finish for
            /// `grace` seconds, then end it.
            case stop
            /// node-host only: end the node at once with everything it holds, as a crash would.
            case kill
            /// node-host only: stall the node's event loops (nothing it holds moves, pings go
            /// unanswered) until `thaw`.
            case freeze
            case thaw
            /// node-host listening for its runner (`--listen`): the first request of a session,
            /// naming the nodes to host, their tunnels and where the runner's tunnel socket is.
            case hello
            /// node-host listening: the fleet's certificate files as they are now (`files`), for
            /// applications with edge TLS defined after the hello.
            case files
        }

        public var id: Int
        public var op: Operation
        public var app: String
        public var addresses: [String]
        /// For `define`: the application as a Spectrum object in JSON.
        public var application: String?
        /// Which node a node-host process is asked about; nil for a single `edgesim node`.
        public var node: String?
        /// For `stop`: seconds the node's connections may take to finish.
        public var grace: Double?
        /// For `hello`: proof that the runner holds the listener's token, for this connection's
        /// challenge (`NodeHostHandshake`); the token itself never crosses.
        public var proof: String?
        /// For `hello`: the runner's own challenge, which the host's reply answers.
        public var challenge: String?
        /// For `hello`: the nodes to host, and each one's tunnel id (netns mode).
        public var nodes: [String]?
        public var tunnels: [Int]?
        /// For `hello`: the runner's tunnel socket port (its address is the control
        /// connection's), in netns mode.
        public var tunnelPort: Int?
        /// For `hello`: the DNS server the nodes ask, as address:port.
        public var resolver: String?
        /// For `hello` and `files`: the fleet's certificate folder (its CA and what it issued), by
        /// file name; sent so only when there is no token.
        public var files: [String: String]?
        /// The same files sealed with a key from the token and the challenge (`NodeHostHandshake`).
        public var sealedFiles: String?
        /// For `hello`: `FleetPlan.fingerprint` of the runner's plan, which the host's must match.
        public var fleet: String?

        public init(
            id: Int, op: Operation, app: String, addresses: [IPAddress], application: String? = nil, node: String? = nil
        ) {
            self.id = id
            self.op = op
            self.app = app
            self.addresses = addresses.map(\.description)
            self.application = application
            self.node = node
        }
    }

    /// A line from the node: a reply (`reply` set) or readiness (`ready`). Events are lines of
    /// their own, `ProxyEvent`s as the node's event log writes them (`line(from:)`).
    public struct Output: Codable, Sendable {
        public var reply: Int?
        public var ok: Bool?
        public var error: String?
        public var ready: Bool?
        /// The answer to `routes`.
        public var routes: SmartRoutingReport?
        /// The answer to `hello` in netns mode: the host's tunnel socket port.
        public var tunnelPort: Int?
        /// What a node host listening for its runner says first: the challenge the hello's
        /// proof answers.
        public var challenge: String?
        /// The reply to a `hello`: the host's answer to the runner's challenge (`NodeHostHandshake`).
        public var answer: String?

        public init(reply: Int, error: String?) {
            self.reply = reply
            self.ok = error == nil
            self.error = error
        }

        public init(ready: Bool) { self.ready = ready }

        public init(challenge: String) { self.challenge = challenge }
    }

    /// A request line as a node reads it; nil when it is not one.
    public static func request(from line: some Collection<UInt8>) -> Request? {
        try? JSONDecoder().decode(Request.self, from: Data(line))
    }

    /// What a line a node wrote is: an event, a control message, or neither (its log).
    public enum Line: Sendable {
        case event(ProxyEvent)
        case output(Output)
    }

    public static func line(from bytes: some Collection<UInt8>) -> Line? {
        // Only event lines have an "event" key; replies and readiness never do.
        if bytes.count > 9, let event = ProxyEvent.decoded(fromJSONLine: bytes) { return .event(event) }
        return output(from: bytes).map(Line.output)
    }

    /// A line a node wrote, as the runner reads it; nil when it is not a control message.
    public static func output(from line: some Collection<UInt8>) -> Output? {
        try? JSONDecoder().decode(Output.self, from: Data(line))
    }

    public static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ((try? encoder.encode(value)) ?? Data("{}".utf8)) + Data("\n".utf8)
    }
}
