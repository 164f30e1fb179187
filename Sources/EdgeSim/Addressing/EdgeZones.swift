import EdgeDNS
import EdgeModel
import Synchronization

/// A host that has reverse DNS: its name and the addresses that point back to it.
public struct NamedHost: Sendable, Hashable {
    public var name: DNSName
    public var addresses: [IPAddress]
    /// False: the name has no A/AAAA pointing back, so forward-confirmed reverse DNS fails.
    public var confirmed: Bool

    public init(name: DNSName, addresses: [IPAddress], confirmed: Bool = true) {
        self.name = name
        self.addresses = addresses
        self.confirmed = confirmed
    }
}

/// Names that stand for origins (`origin_names`), with the addresses they have now. Shared by
/// every copy of the zones, so a change is in the next build wherever it is made.
public final class OriginNameTable: Sendable {
    public struct Entry: Sendable, Hashable {
        public var addresses: [IPAddress]
        public var ttl: UInt32
    }

    private let entries = Mutex<[DNSName: Entry]>([:])

    public init() {}

    public var all: [DNSName: Entry] { entries.withLock { $0 } }

    public func set(_ name: DNSName, addresses: [IPAddress], ttl: UInt32? = nil) {
        entries.withLock { entries in
            entries[name] = Entry(addresses: addresses, ttl: ttl ?? entries[name]?.ttl ?? 5)
        }
    }
}

/// The DNS zones that publish where applications are: their names (A/AAAA for ADDRESS, a CNAME
/// to a generated host for CNAME), the generated hosts, and reverse zones for the application
/// pools that answer NXDOMAIN (application addresses have no PTR records). Hosts with reverse
/// DNS (clients and origins in a fleet) get a PTR in the reverse zone of the hosts pools and a
/// matching A/AAAA, so a forward lookup confirms it; other addresses there (edge nodes) answer
/// NXDOMAIN.
public struct EdgeZones: Sendable {
    /// Generated hosts live under `<app id>.apps.<fleetDomain>`.
    public var fleetDomain: DNSName
    /// TTL of address and CNAME records. Default 30 s.
    public var ttl: UInt32
    public var pools: (ipv4: IPPrefix, ipv6: IPPrefix)
    /// Hosts with PTR records, and the pools their addresses come from (each gets a reverse zone).
    public var hosts: [NamedHost]
    public var hostPools: [IPPrefix]
    /// Origin names and their addresses (A/AAAA only).
    public var originNames = OriginNameTable()

    public init(
        fleetDomain: DNSName = DNSName("edgesim.test")!, ttl: UInt32 = 30, pools: (ipv4: IPPrefix, ipv6: IPPrefix),
        hosts: [NamedHost] = [], hostPools: [IPPrefix] = []
    ) {
        self.fleetDomain = fleetDomain
        self.ttl = ttl
        self.pools = pools
        self.hosts = hosts
        self.hostPools = hostPools
    }

    /// Where a host without a `ptr:` name of its own is found: `<host>.hosts.<fleet domain>`.
    public func defaultHostName(_ host: String) -> DNSName {
        DNSName(wireLabels: [Array(host.lowercased().utf8), Array("hosts".utf8)] + fleetDomain.wireLabels)
    }

    public var nameServer: DNSName { DNSName(wireLabels: [Array("ns1".utf8)] + fleetDomain.wireLabels) }

    public func generatedHost(_ app: Application) -> DNSName {
        DNSName(wireLabels: [Array(app.id.lowercased().utf8), Array("apps".utf8)] + fleetDomain.wireLabels)
    }

    /// Every zone, built from the addresses the book holds now.
    public func build(_ apps: [Application], book: AddressBook) -> [Zone] {
        var apexes: [DNSName] = [fleetDomain]
        let origins = originNames.all
        for name in apps.map({ DNSName($0.dns.name) ?? .root }) + hosts.map(\.name) + origins.keys.sorted(by: { $0.text < $1.text }) {
            let apex = name.wireLabels.count > 1 ? name.parent! : name
            if !apexes.contains(where: { apex.isSubdomain(of: $0) }) {
                apexes.removeAll { $0.isSubdomain(of: apex) }
                apexes.append(apex)
            }
        }
        var zones = apexes.map { Zone(apex: $0, nameServers: [nameServer], ttl: 300, negativeTTL: ttl) }
        func add(_ record: DNSRecord) {
            guard
                let index = zones.indices.filter({ record.name.isSubdomain(of: zones[$0].apex) })
                    .max(by: { zones[$0].apex.wireLabels.count < zones[$1].apex.wireLabels.count })
            else { return }
            zones[index].add(record)
        }
        for app in apps {
            guard let name = DNSName(app.dns.name) else { continue }
            let addresses = book.addresses(of: app).map { DNSRecord(name: name, ttl: ttl, data: $0.isIPv4 ? .a($0) : .aaaa($0)) }
            switch app.dns.type {
            case .address:
                addresses.forEach(add)
            case .cname:
                let host = generatedHost(app)
                add(DNSRecord(name: name, ttl: ttl, data: .cname(host)))
                addresses.forEach { add(DNSRecord(name: host, ttl: $0.ttl, data: $0.data)) }
            }
        }
        for (name, entry) in origins {
            for address in entry.addresses {
                add(DNSRecord(name: name, ttl: entry.ttl, data: address.isIPv4 ? .a(address) : .aaaa(address)))
            }
        }
        zones += [reverseZone(pools.ipv4), reverseZone(pools.ipv6)] + hostPools.map(reverseZone)
        for host in hosts {
            for address in host.addresses {
                if host.confirmed { add(DNSRecord(name: host.name, ttl: ttl, data: address.isIPv4 ? .a(address) : .aaaa(address))) }
                add(DNSRecord(name: DNSName.reverse(of: address), ttl: ttl, data: .ptr(host.name)))
            }
        }
        return zones
    }

    /// An empty zone covering the pool's reverse names, at the nearest octet (IPv4) or nibble
    /// (IPv6) boundary, so PTR queries for application addresses get an authoritative NXDOMAIN.
    func reverseZone(_ prefix: IPPrefix) -> Zone {
        let labels: [String]
        if prefix.address.isIPv4 {
            labels = prefix.address.bytes.prefix(prefix.length / 8).reversed().map(String.init) + ["in-addr", "arpa"]
        } else {
            let nibbles = prefix.address.bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0xF, radix: 16)] }
            labels = nibbles.prefix(prefix.length / 4).reversed() + ["ip6", "arpa"]
        }
        return Zone(apex: DNSName(labels: labels), nameServers: [nameServer], ttl: 300, negativeTTL: ttl)
    }
}
