/// Keys in the order they were last used, with the least recently used at hand: every
/// operation is a few hash lookups, so a full flow table finds what to evict without a scan.
struct RecencyList<Key: Hashable> {
    private var older: [Key: Key] = [:]
    private var newer: [Key: Key] = [:]
    private var members: Set<Key> = []
    private(set) var oldest: Key?
    private(set) var newest: Key?

    var count: Int { members.count }

    /// Marks `key` as used now (adding it if new).
    mutating func touch(_ key: Key) {
        if newest == key { return }
        remove(key)
        members.insert(key)
        if let last = newest {
            newer[last] = key
            older[key] = last
        } else {
            oldest = key
        }
        newest = key
    }

    mutating func remove(_ key: Key) {
        guard members.remove(key) != nil else { return }
        let before = older.removeValue(forKey: key)
        let after = newer.removeValue(forKey: key)
        if let before { newer[before] = after } else { oldest = after }
        if let after { older[after] = before } else { newest = before }
    }
}
