import EdgeDNS
import EdgeModel
import NIOCore
import Synchronization

/// Resolves `origin_dns` names through a DNS server and keeps each answer until its TTL (or the
/// application's `ttl`) runs out; the next connection after that resolves again. Connections
/// already open keep the address they were given.
public final class DNSOriginResolver: OriginResolving {
    private struct Entry {
        var future: EventLoopFuture<[ResolvedOrigin]>
        var expires: NIODeadline
    }

    private let client: DNSClient
    private let now: @Sendable () -> NIODeadline
    private let cache = Mutex<[String: Entry]>([:])
    /// Lookups made (not answered from the cache), for tests and reports.
    private let lookups = Atomic<Int>(0)

    public init(client: DNSClient, now: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.client = client
        self.now = now
    }

    public var lookupCount: Int { lookups.load(ordering: .relaxed) }

    public func resolve(_ origin: OriginDNS, on eventLoop: any EventLoop) -> EventLoopFuture<[ResolvedOrigin]> {
        let key = "\(origin.name) \(origin.type.rawValue)"
        let current = now()
        let future = cache.withLock { cache -> EventLoopFuture<[ResolvedOrigin]> in
            if let entry = cache[key], entry.expires > current { return entry.future }
            let promise = eventLoop.makePromise(of: (origins: [ResolvedOrigin], ttl: UInt32).self)
            promise.completeWithTask { try await self.lookUp(origin) }
            let shared = promise.futureResult.map(\.origins)
            // Until the answer arrives, later callers share this lookup.
            cache[key] = Entry(future: shared, expires: .distantFuture)
            lookups.wrappingAdd(1, ordering: .relaxed)
            promise.futureResult.whenComplete { result in
                self.cache.withLock { cache in
                    switch result {
                    case .success(let answer):
                        let seconds = Int64(origin.ttl ?? Int(answer.ttl))
                        cache[key] = Entry(future: shared, expires: self.now() + .seconds(seconds))
                    case .failure:
                        cache[key] = nil
                    }
                }
            }
            return shared
        }
        return future.hop(to: eventLoop)
    }

    private func lookUp(_ origin: OriginDNS) async throws -> (origins: [ResolvedOrigin], ttl: UInt32) {
        guard let name = DNSName(origin.name) else {
            throw OriginResolutionError(status: .resolveFailed, message: "'\(origin.name)' is not a valid name")
        }
        switch origin.type {
        case .a: return try await addresses(name, types: [.a])
        case .aaaa: return try await addresses(name, types: [.aaaa])
        case .addresses: return try await addresses(name, types: [.a, .aaaa])
        case .srv:
            let reply = try await ask(name, .srv)
            var found: [ResolvedOrigin] = []
            var ttl = UInt32.max
            let targets = reply.answers.compactMap { record -> (UInt16, UInt16, UInt16, DNSName)? in
                guard case .srv(let priority, let weight, let port, let target) = record.data else { return nil }
                ttl = min(ttl, record.ttl)
                return (priority, weight, port, target)
            }.sorted { ($0.0, UInt16.max - $0.1) < ($1.0, UInt16.max - $1.1) }
            for (_, _, port, target) in targets {
                let resolved = try await addresses(target, types: [.a, .aaaa])
                ttl = min(ttl, resolved.ttl)
                found += resolved.origins.map { ResolvedOrigin(address: $0.address, port: port) }
            }
            guard !found.isEmpty else {
                throw OriginResolutionError(status: .resolveNoAddress, message: "\(name) has no usable SRV records")
            }
            return (found, ttl)
        }
    }

    private func addresses(_ name: DNSName, types: [DNSType]) async throws -> (origins: [ResolvedOrigin], ttl: UInt32) {
        var found: [ResolvedOrigin] = []
        var ttl = UInt32.max
        var missing = 0
        for type in types {
            let reply = try await ask(name, type)
            if reply.responseCode == .nameError { missing += 1 }
            for record in reply.answers {
                switch record.data {
                case .a(let address), .aaaa(let address):
                    found.append(ResolvedOrigin(address: address))
                    ttl = min(ttl, record.ttl)
                default: continue
                }
            }
        }
        if found.isEmpty {
            throw OriginResolutionError(
                status: missing == types.count ? .resolveFailed : .resolveNoAddress,
                message: missing == types.count
                    ? "\(name) does not exist (NXDOMAIN)" : "\(name) has no \(types.map(\.description).joined(separator: "/")) records")
        }
        return (found, ttl)
    }

    private func ask(_ name: DNSName, _ type: DNSType) async throws -> DNSMessage {
        do {
            let reply = try await client.query(name, type)
            guard reply.responseCode == .noError || reply.responseCode == .nameError else {
                throw OriginResolutionError(status: .resolveFailed, message: "\(name) \(type): the server answered \(reply.responseCode)")
            }
            return reply
        } catch let error as DNSClient.Timeout {
            throw OriginResolutionError(status: .resolveTimeout, message: error.description)
        }
    }
}
