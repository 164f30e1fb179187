/// An IP address and port: one end of a connection or flow.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `198.18.0.1:80` or `[2001:db8::1]:80`.
    public init?(_ text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), let address = IPAddress(host), !address.isIPv4 else {
                return nil
            }
            self.init(address, port)
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]),
                let address = IPAddress(text[..<colon]), address.isIPv4
            else { return nil }
            self.init(address, port)
        }
    }

    public var description: String { "\(address.bracketed):\(port)" }
}
