import NIOCore

/// Replies a UDP listener already wrote, by the query's bytes after its ID. An answer depends
/// only on those bytes and the zones (the responder is authoritative: no client-specific or
/// time-dependent answers), so the same query asked again, while the zones are unchanged, is
/// answered with the same bytes under the new ID, without reading the query or writing the
/// reply again. One cache per listener socket (no lock); emptied when the zones change or it
/// is full.
struct ResponseCache {
    struct Entry {
        /// The query from its flags on.
        var query: [UInt8]
        var reply: ByteBuffer
        var truncated: Bool
        var formatError: Bool
        var answered: DNSServer.Answered
    }

    private var entries: [Int: Entry] = [:]
    private var generation = -1
    let capacity: Int
    /// Longest query kept (a standard query with EDNS is well under this).
    static let longestQuery = 512

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    private static func key(_ query: ByteBuffer) -> Int? {
        guard query.readableBytes > 12, query.readableBytes <= longestQuery else { return nil }
        var hasher = Hasher()
        query.withUnsafeReadableBytes { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0[2...])) }
        return hasher.finalize()
    }

    /// The reply kept for this query, under its ID; nil when none is (or the zones changed).
    mutating func reply(to query: ByteBuffer, generation current: Int) -> Entry? {
        if current != generation {
            entries.removeAll(keepingCapacity: true)
            generation = current
            return nil
        }
        guard let key = Self.key(query), var entry = entries[key] else { return nil }
        let same = query.withUnsafeReadableBytes { bytes in entry.query.elementsEqual(bytes[2...]) }
        guard same, let id = query.getInteger(at: query.readerIndex, as: UInt16.self) else { return nil }
        entry.reply.setInteger(id, at: entry.reply.readerIndex)
        return entry
    }

    /// Keeps the reply written for `query` from zones of generation `current`.
    mutating func keep(
        query: ByteBuffer, reply: ByteBuffer, truncated: Bool, formatError: Bool, answered: DNSServer.Answered, generation current: Int
    ) {
        guard current == generation, let key = Self.key(query) else { return }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        let bytes = query.withUnsafeReadableBytes { Array($0[2...]) }
        entries[key] = Entry(query: bytes, reply: reply, truncated: truncated, formatError: formatError, answered: answered)
    }
}
