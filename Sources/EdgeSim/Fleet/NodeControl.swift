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
        }

        public var id: Int
        public var op: Operation
        public var app: String
        public var addresses: [String]
        /// For `define`: the application as a Spectrum object in JSON.
        public var application: String?

        public init(id: Int, op: Operation, app: String, addresses: [IPAddress], application: String? = nil) {
            self.id = id
            self.op = op
            self.app = app
            self.addresses = addresses.map(\.description)
            self.application = application
        }
    }

    /// A line from the node: a reply (`reply` set), readiness (`ready`), or an event.
    public struct Output: Codable, Sendable {
        public var reply: Int?
        public var ok: Bool?
        public var error: String?
        public var ready: Bool?
        /// The answer to `routes`.
        public var routes: SmartRoutingReport?
        // Event fields (see ProxyEvent).
        public var event: String?
        public var time: Double?
        public var app: String?
        public var node: String?
        public var clientIP: String?
        public var status: Int?
        /// Edge nodes a smart-routed connection or flow went through.
        public var via: [String]?
        /// Times a read waited for a slow side (see ProxyEvent).
        public var readsHeld: Int?
        /// The origin address and port the node connected to.
        public var origin: String?
        /// Bytes from the client and to it, and how long it lasted (see ProxyEvent).
        public var bytesIn: UInt64?
        public var bytesOut: UInt64?
        public var durationMs: Double?
        /// Time to connect to the origin; tcp or udp.
        public var originRTTMs: Double?
        public var transport: String?

        public init(reply: Int, error: String?) {
            self.reply = reply
            self.ok = error == nil
            self.error = error
        }

        public init(ready: Bool) { self.ready = ready }
    }

    /// A request line as a node reads it; nil when it is not one.
    public static func request(from line: some Collection<UInt8>) -> Request? {
        try? JSONDecoder().decode(Request.self, from: Data(line))
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
