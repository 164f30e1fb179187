import Crypto
import EdgeDNS
import EdgeModel
import EdgeSim
import Foundation

/// The DNS zones a fleet serves, as the API's `/zones` lists them: one per forward zone apex,
/// each with an id derived from its name, so it stays the same across restarts.
public struct ServedZone: Sendable, Hashable {
    public var id: String
    public var name: DNSName

    public init(name: DNSName) {
        self.name = name
        let digest = SHA256.hash(data: Data(name.text.lowercased().utf8))
        id = digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// The forward zones of these applications (reverse zones are not listed).
    public static func all(_ fleet: Fleet) -> [ServedZone] {
        fleet.zones.build(fleet.applications, book: fleet.book).map(\.apex)
            .filter { name in !["in-addr.arpa", "ip6.arpa"].contains { name.text.hasSuffix($0) } }
            .map(ServedZone.init)
            .sorted { $0.name.text < $1.name.text }
    }

    /// The zone as Cloudflare's API shows one.
    public func object(nameServer: DNSName) -> [String: Any] {
        [
            "id": id, "name": name.text, "status": "active", "paused": false,
            "type": "full", "name_servers": [nameServer.text],
        ]
    }
}
