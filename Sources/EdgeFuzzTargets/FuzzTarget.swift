/// What each fuzzer checks of a parser fed arbitrary bytes. The same checks run under libFuzzer
/// (Fuzz/, `scripts/fuzz`) and, over the committed corpora and regression inputs, in the test
/// suite. A parser may refuse bytes; it may not crash, read past what it was given, or break
/// the invariants each check names.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// DNS messages: read, answered as the fleet's DNS answers, written, read back.
    case dns
    /// PROXY v1, v2 and Simple Proxy Protocol headers, whole and split at every point.
    case proxy
    /// YAML/JSON documents and every file decoder (applications, topology, scenario, rules).
    case document
    /// Capture files through libpcap and edgesim's own record checks, then decoded into flows.
    case capture
    /// Lines of the fleet's control channel, both directions.
    case control
    /// Smart routing between edges: probe datagrams and relay headers.
    case relay
    /// A mail client's lines to the built-in smtp origin, and Postfix's log lines.
    case mail
    /// Captured frames of every link type, decoded (IPv4/IPv6, fragments) into flows and replay
    /// schedules.
    case packets
    /// An http application's forwarder: a client's requests and an origin's responses.
    case http

    public func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        switch self {
        case .dns: try DNSFuzzCheck.check(bytes)
        case .proxy: try ProxyFuzzCheck.check(bytes)
        case .document: try DocumentFuzzCheck.check(bytes)
        case .capture: try CaptureFuzzCheck.check(bytes)
        case .control: try ControlFuzzCheck.check(bytes)
        case .relay: try RelayFuzzCheck.check(bytes)
        case .mail: try MailFuzzCheck.check(bytes)
        case .packets: try PacketsFuzzCheck.check(bytes)
        case .http: try HTTPFuzzCheck.check(bytes)
        }
    }
}

/// An input that broke a parser's invariant.
public struct FuzzFinding: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
