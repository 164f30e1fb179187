import EdgeModel
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension Endpoint {
    /// nil for Unix-domain addresses. Reads the socket address's bytes directly: this runs twice
    /// for every accepted connection.
    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            let raw = v4.address
            self.init(.v4(UInt32(bigEndian: raw.sin_addr.s_addr)), UInt16(bigEndian: raw.sin_port))
        case .v6(let v6):
            var raw = v6.address
            let value = withUnsafeBytes(of: &raw.sin6_addr) { bytes in bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
            self.init(.v6(value), UInt16(bigEndian: raw.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }

    public var socketAddress: SocketAddress {
        switch address {
        case .v4(let value):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port.bigEndian
            raw.sin_addr.s_addr = value.bigEndian
            return SocketAddress(raw)
        case .v6:
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            let bytes = address.bytes
            withUnsafeMutableBytes(of: &raw.sin6_addr) { target in
                for index in 0..<16 { target[index] = bytes[index] }
            }
            return SocketAddress(raw)
        }
    }
}

extension EventLoopGroup {
    /// Runs a bootstrap on one of the group's own threads. Sockets are made by the thread that
    /// calls the bootstrap, so this is what puts them in the network namespace of a group whose
    /// threads live in one; for any other group it changes nothing.
    public func onLoop<Result: Sendable>(
        _ body: @escaping @Sendable (any EventLoop) -> EventLoopFuture<Result>
    ) -> EventLoopFuture<Result> {
        let loop = next()
        return loop.flatSubmit { body(loop) }
    }
}
