/// One direction of a captured TCP connection put back in order: segments out of order are held
/// until the bytes before them arrive, retransmissions and overlaps deliver each byte once, and
/// a hole that never fills is skipped at the end and reported with its size.
struct TCPStreamAssembler: Sendable {
    struct Chunk: Sendable, Hashable {
        var time: Double
        var record: Int
        var bytes: [UInt8]
    }

    /// Segments held at most; past it the oldest hole is given up as a gap.
    static let maxHeld = 4096

    private(set) var chunks: [Chunk] = []
    private(set) var delivered = 0
    private(set) var retransmitted = 0
    /// Holes skipped: how far into the stream, and how many bytes.
    private(set) var gaps: [(offset: Int, size: Int)] = []
    /// The first byte seen was not the first of the connection (no SYN in the capture).
    private(set) var startedMidStream = false
    private var next: UInt32?
    private var held: [SequencedChunk] = []

    mutating func syn(sequence: UInt32) {
        if next == nil { next = sequence &+ 1 }
    }

    mutating func segment(sequence: UInt32, bytes: [UInt8], time: Double, record: Int) {
        guard !bytes.isEmpty else { return }
        if next == nil {
            next = sequence
            startedMidStream = true
        }
        held.append(SequencedChunk(sequence: sequence, chunk: Chunk(time: time, record: record, bytes: bytes)))
        drain()
        if held.count > Self.maxHeld { skipHole() }
    }

    /// At the end of the capture: every byte still held is delivered, holes skipped and reported.
    mutating func finish() {
        while !held.isEmpty { skipHole() }
    }

    /// Bytes from `next` on that are held, delivered in order; what is wholly old is dropped.
    private mutating func drain() {
        guard var expected = next else { return }
        var progress = true
        while progress {
            progress = false
            var index = 0
            while index < held.count {
                let segment = held[index]
                let start = Int(Int32(bitPattern: segment.sequence &- expected))
                let end = start + segment.chunk.bytes.count
                if end <= 0 {
                    retransmitted += 1
                    held.remove(at: index)
                    continue
                }
                if start <= 0 {
                    var chunk = segment.chunk
                    if start < 0 { chunk.bytes.removeFirst(-start) }
                    // Bytes held for a hole became usable when the hole filled, not before.
                    if let last = chunks.last { chunk.time = max(chunk.time, last.time) }
                    expected = expected &+ UInt32(chunk.bytes.count)
                    delivered += chunk.bytes.count
                    chunks.append(chunk)
                    held.remove(at: index)
                    progress = true
                    continue
                }
                index += 1
            }
        }
        next = expected
    }

    private mutating func skipHole() {
        guard let expected = next,
            let nearest = held.min(by: { Int32(bitPattern: $0.sequence &- expected) < Int32(bitPattern: $1.sequence &- expected) })
        else { return }
        let distance = Int(Int32(bitPattern: nearest.sequence &- expected))
        if distance > 0 {
            gaps.append((delivered, distance))
            next = nearest.sequence
        }
        drain()
    }
}

/// A held segment and where it starts in sequence space.
struct SequencedChunk: Sendable {
    var sequence: UInt32
    var chunk: TCPStreamAssembler.Chunk
}
