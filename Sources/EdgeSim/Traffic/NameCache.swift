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

    /// The name's IPv4 addresses (IPv6 with `ipv6`), following CNAMEs in the answer, from cache
    /// while fresh.
    public func addresses(of name: String, ipv6: Bool = false) async throws -> [IPAddress] {
        let now = ContinuousClock.now
        let key = ipv6 ? "\(name) AAAA" : name
        if let entry = entries.withLock({ $0[key] }), entry.expires > now { return entry.addresses }
        guard let query = DNSName(name) else { throw Unresolved(description: "\(name) is not a DNS name") }
        let answer = try await client.query(query, ipv6 ? .aaaa : .a)
        let addresses = answer.answers.compactMap { record -> IPAddress? in
            switch record.data {
            case .a(let address) where !ipv6: return address
            case .aaaa(let address) where ipv6: return address
            default: return nil
            }
        }
        guard !addresses.isEmpty else {
            throw Unresolved(description: "\(name) has no \(ipv6 ? "AAAA" : "A") record (\(answer.responseCode))")
        }
        let ttl = answer.answers.map(\.ttl).min() ?? 0
        entries.withLock { $0[key] = (addresses, now + .seconds(Int(ttl))) }
        return addresses
    }
}
