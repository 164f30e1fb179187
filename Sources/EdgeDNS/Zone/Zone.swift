import Synchronization

/// One authoritative zone: its apex, SOA, and every record by owner name.
public struct Zone: Sendable {
    public var apex: DNSName
    public var soa: SOAData
    /// TTL of the SOA and NS records.
    public var ttl: UInt32
    private(set) var records: [DNSName: [DNSRecord]] = [:]
    /// Names that own nothing but have names below them (empty non-terminals).
    private(set) var interior: Set<DNSName> = []

    public init(apex: DNSName, nameServers: [DNSName], serial: UInt32 = 1, ttl: UInt32 = 300, negativeTTL: UInt32 = 30) {
        self.apex = apex
        self.ttl = ttl
        soa = SOAData(
            primary: nameServers.first ?? DNSName(wireLabels: [Array("ns".utf8)] + apex.wireLabels),
            mailbox: DNSName(wireLabels: [Array("hostmaster".utf8)] + apex.wireLabels), serial: serial, minimum: negativeTTL)
        for server in nameServers { add(DNSRecord(name: apex, ttl: ttl, data: .ns(server))) }
    }

    public var soaRecord: DNSRecord { DNSRecord(name: apex, ttl: ttl, data: .soa(soa)) }

    public mutating func add(_ record: DNSRecord) {
        precondition(record.name.isSubdomain(of: apex), "\(record.name) is outside zone \(apex)")
        records[record.name, default: []].append(record)
        var above = record.name.parent
        while let name = above, name.isSubdomain(of: apex), name != apex {
            interior.insert(name)
            above = name.parent
        }
    }

    /// Removes every record of `type` (all types when nil) owned by `name`.
    public mutating func remove(_ name: DNSName, type: DNSType? = nil) {
        records[name]?.removeAll { type == nil || $0.type == type }
        if records[name]?.isEmpty == true { records[name] = nil }
        rebuildInterior()
    }

    private mutating func rebuildInterior() {
        interior = []
        for name in records.keys {
            var above = name.parent
            while let parent = above, parent.isSubdomain(of: apex), parent != apex {
                interior.insert(parent)
                above = parent.parent
            }
        }
    }

    public func records(at name: DNSName) -> [DNSRecord] {
        var found = records[name] ?? []
        if name == apex { found.insert(soaRecord, at: 0) }
        return found
    }

    public func exists(_ name: DNSName) -> Bool {
        name == apex || records[name] != nil || interior.contains(name)
    }
}

/// The zones a responder serves. Updates are atomic: a query sees the zone wholly before or
/// wholly after a change, and each change raises the zone's SOA serial.
public final class ZoneStore: Sendable {
    private let zones: Mutex<[Zone]>
    private let changes = Atomic<Int>(0)

    public init(_ zones: [Zone] = []) {
        self.zones = Mutex(zones)
    }

    public var snapshot: [Zone] { zones.withLock { $0 } }

    /// Goes up with every change, so what was answered from the zones before can be told from
    /// what is answered now. Read it before the snapshot an answer comes from.
    public var generation: Int { changes.load(ordering: .acquiring) }

    public func add(_ zone: Zone) {
        zones.withLock { $0.append(zone) }
        changes.add(1, ordering: .releasing)
    }

    /// Puts `zones` in place of the current set in one step. A zone whose apex was served before
    /// keeps counting: its serial becomes one above the old one.
    public func replace(with zones: [Zone]) {
        self.zones.withLock { current in
            var next = zones
            for index in next.indices {
                if let old = current.first(where: { $0.apex == next[index].apex }) { next[index].soa.serial = old.soa.serial &+ 1 }
            }
            current = next
        }
        changes.add(1, ordering: .releasing)
    }

    /// Changes the zone with this apex and increments its serial; returns the new serial.
    @discardableResult
    public func update(_ apex: DNSName, _ change: (inout Zone) -> Void) -> UInt32? {
        defer { changes.add(1, ordering: .releasing) }
        return zones.withLock { zones in
            guard let index = zones.firstIndex(where: { $0.apex == apex }) else { return nil }
            change(&zones[index])
            zones[index].soa.serial &+= 1
            return zones[index].soa.serial
        }
    }
}
