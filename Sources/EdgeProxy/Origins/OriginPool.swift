import EdgeModel
import NIOCore
import Synchronization

/// Where an application's traffic may go, in the order to try: round-robin over the origins,
/// then the others in turn as failover.
public final class OriginPool: Sendable {
    public let app: Application
    private let next = Atomic<Int>(0)
    private let resolver: (any OriginResolving)?

    public init(app: Application, resolver: (any OriginResolving)? = nil) {
        self.app = app
        self.resolver = resolver
    }

    /// The origin endpoints for a connection that arrived on `edgePort`, first choice first.
    public func candidates(edgePort: UInt16, on eventLoop: any EventLoop) -> EventLoopFuture<[Endpoint]> {
        switch app.origin {
        case .direct:
            return eventLoop.makeSucceededFuture(directCandidates(edgePort: edgePort) ?? [])
        case .dns(let spec):
            guard let resolver else {
                return eventLoop.makeFailedFuture(
                    OriginResolutionError(status: .resolveFailed, message: "no resolver configured for origin_dns \(spec.name)"))
            }
            return resolver.resolve(spec, on: eventLoop).flatMapThrowing { targets in
                let endpoints = targets.compactMap { target -> Endpoint? in
                    if let port = target.port { return Endpoint(target.address, port) }
                    guard let ports = spec.ports, let port = self.app.edge.ports.map(edgePort, onto: ports) else { return nil }
                    return Endpoint(target.address, port)
                }
                guard !endpoints.isEmpty else {
                    throw OriginResolutionError(status: .resolveNoAddress, message: "\(spec.name) resolved to no usable address")
                }
                return self.rotate(endpoints)
            }
        }
    }

    /// The candidates at once, for origins given as addresses; nil for `origin_dns`.
    func directCandidates(edgePort: UInt16) -> [Endpoint]? {
        guard case .direct(let addresses) = app.origin else { return nil }
        let endpoints = addresses.compactMap { origin -> Endpoint? in
            guard case .ip(let address) = origin.host, let port = app.edge.ports.map(edgePort, onto: origin.ports) else { return nil }
            return Endpoint(address, port)
        }
        return rotate(endpoints)
    }

    private func rotate(_ endpoints: [Endpoint]) -> [Endpoint] {
        guard endpoints.count > 1 else { return endpoints }
        let start = next.wrappingAdd(1, ordering: .relaxed).oldValue % endpoints.count
        return Array(endpoints[start...] + endpoints[..<start])
    }
}

/// An address found for an `origin_dns` name; SRV answers carry the port too.
public struct ResolvedOrigin: Sendable, Hashable {
    public var address: IPAddress
    public var port: UInt16?

    public init(address: IPAddress, port: UInt16? = nil) {
        self.address = address
        self.port = port
    }
}

/// Resolves `origin_dns` names, caching each answer for its TTL.
public protocol OriginResolving: Sendable {
    func resolve(_ origin: OriginDNS, on eventLoop: any EventLoop) -> EventLoopFuture<[ResolvedOrigin]>
}

public struct OriginResolutionError: Error, Sendable, CustomStringConvertible {
    public var status: StatusCode
    public var message: String

    public init(status: StatusCode, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}
