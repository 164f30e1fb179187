import EdgeModel
import NIOCore

extension Endpoint {
    /// nil for Unix-domain addresses.
    public init?(_ address: SocketAddress) {
        guard let port = address.port, let ip = address.ipAddress.flatMap({ IPAddress($0) }) else { return nil }
        self.init(ip, UInt16(port))
    }

    public var socketAddress: SocketAddress {
        // Parsed from our own canonical text, so this cannot fail.
        try! SocketAddress(ipAddress: address.description, port: Int(port))
    }
}
