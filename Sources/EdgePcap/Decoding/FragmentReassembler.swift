import EdgeModel

/// Puts fragmented IP datagrams back together (IPv4 and IPv6 alike), bounded: at most
/// `maxPending` datagrams wait at once, none over 65,535 bytes, and one not whole within
/// `maxAge` seconds of capture time is given up and reported.
struct FragmentReassembler: Sendable {
    struct Key: Sendable, Hashable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var proto: UInt8
    }

    enum Outcome {
        case waiting
        case whole([UInt8])
        case invalid(String)
    }

    private struct Pending {
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        var length: Int?
        var firstTime: Double
        var firstRecord: Int
    }

    static let maxPending = 1024
    static let maxAge = 30.0
    private var pending: [Key: Pending] = [:]
    private(set) var incomplete: [String] = []

    mutating func add(_ key: Key, offset: Int, bytes: ArraySlice<UInt8>, last: Bool, time: Double, record: Int) -> Outcome {
        expire(before: time - Self.maxAge)
        let end = offset + bytes.count
        guard end <= 65_535 else { return .invalid("a fragment reaching past 65,535 bytes") }
        var entry = pending[key] ?? Pending(firstTime: time, firstRecord: record)
        if pending[key] == nil, pending.count >= Self.maxPending {
            return .invalid("more than \(Self.maxPending) fragmented datagrams incomplete at once")
        }
        if last {
            if let length = entry.length, length != end { return .invalid("two last fragments of one datagram disagree on its length") }
            entry.length = end
        }
        entry.pieces.append((offset, Array(bytes)))
        guard let length = entry.length else {
            pending[key] = entry
            return .waiting
        }
        // Whole when the pieces, in order of offset, leave no hole up to the length.
        let sorted = entry.pieces.sorted { $0.offset < $1.offset }
        var covered = 0
        for piece in sorted where piece.offset <= covered { covered = max(covered, piece.offset + piece.bytes.count) }
        guard covered >= length else {
            pending[key] = entry
            return .waiting
        }
        var datagram = [UInt8](repeating: 0, count: length)
        for piece in sorted {
            let upto = min(piece.offset + piece.bytes.count, length)
            guard upto > piece.offset else { continue }
            datagram.replaceSubrange(piece.offset..<upto, with: piece.bytes.prefix(upto - piece.offset))
        }
        pending[key] = nil
        return .whole(datagram)
    }

    /// Datagrams still waiting for pieces; called at the end of a capture.
    mutating func finish() {
        expire(before: .infinity)
    }

    private mutating func expire(before time: Double) {
        for (key, entry) in pending where entry.firstTime < time {
            incomplete.append(
                "record \(entry.firstRecord): a fragmented datagram from \(key.source) to \(key.destination) (id \(key.identification)) never became whole"
            )
            pending[key] = nil
        }
    }
}
