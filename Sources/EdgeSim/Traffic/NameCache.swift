import EdgeDNS
import EdgeModel
import Foundation
import Synchronization

/// Application names resolved through the fleet's DNS, each answer kept for its TTL: what a
/// client that honours TTLs does.
public final class NameCache: Sendable {
    public let client: DNSClient
    private let entries = Mutex<[String: (addresses: [IPAddress], expires: ContinuousClock.Instant)]>([:])

    public init(client: DNSClient) {
        self.client = client
    }

    public struct Unresolved: Error, CustomStringConvertible {
        public var description: String
    }

    /// The name's IPv4 addresses (following CNAMEs in the answer), from cache while fresh.
    public func addresses(of name: String) async throws -> [IPAddress] {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[name] }), entry.expires > now { return entry.addresses }
        guard let query = DNSName(name) else { throw Unresolved(description: "\(name) is not a DNS name") }
        let answer = try await client.query(query, .a)
        let addresses = answer.answers.compactMap { record -> IPAddress? in
            if case .a(let address) = record.data { return address } else { return nil }
        }
        guard !addresses.isEmpty else { throw Unresolved(description: "\(name) has no A record (\(answer.responseCode))") }
        let ttl = answer.answers.map(\.ttl).min() ?? 0
        entries.withLock { $0[name] = (addresses, now + .seconds(Int(ttl))) }
        return addresses
    }
}
