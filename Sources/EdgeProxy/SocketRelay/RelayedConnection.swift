import EdgeModel
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One client connection on a `SocketRelayLoop`: its two sockets and the bytes on their way
/// each direction. The session's decisions (access, origin candidates in turn) are
/// `TCPSessionStateMachine`'s, as on SwiftNIO's channels; this only moves bytes.
final class RelayedConnection {
    /// Bytes one way: read from `source`, written to `sink`.
    struct Direction {
        /// Bytes read and not yet written (the sink was full).
        var pending: [UInt8] = []
        var pendingStart = 0
        /// Edge-triggered: the source may have bytes waiting, so read until it says EAGAIN.
        var sourceReadable = false
        /// Epoll said the source hung up: read on to its end even after a short read.
        var hangingUp = false
        /// The source sent its FIN.
        var ended = false
        /// The sink was shut for writing after `ended`.
        var shut = false
        var hasPending: Bool { pendingStart < pending.count }
    }

    let slot: Int
    let generation: UInt32
    let service: ApplicationService
    let record: ConnectionRecord
    var machine = TCPSessionStateMachine()
    let client: Int32
    var origin: Int32 = -1
    var clientEndpoint: Endpoint
    var edgeEndpoint: Endpoint
    var connectStarted = NIODeadline.now()
    var connectDeadline: NIODeadline?
    var lastActivity: NIODeadline
    var joined = false
    var toOrigin = Direction()
    var toClient = Direction()
    /// Bytes to send the origin before the client's (a PROXY header).
    var header: [UInt8] = []
    var gateHeld = true

    /// Bytes read at once, so at most that many wait in the edge when the other side is full:
    /// `buffered_bytes` when the scenario limits it, else the loop's whole buffer.
    let readSize: Int

    init(
        slot: Int, generation: UInt32, service: ApplicationService, client: Int32, clientEndpoint: Endpoint, edgeEndpoint: Endpoint,
        now: NIODeadline
    ) {
        self.slot = slot
        self.generation = generation
        self.service = service
        self.record = ConnectionRecord(service: service)
        self.client = client
        self.clientEndpoint = clientEndpoint
        self.edgeEndpoint = edgeEndpoint
        self.lastActivity = now
        self.readSize = min(service.configuration.socketSendBuffer ?? SocketRelayLoop.bufferSize, SocketRelayLoop.bufferSize)
    }

    var isHalfClosed: Bool { toOrigin.ended || toClient.ended }
    var isFinished: Bool { toOrigin.shut && toClient.shut }

    /// What ended a pump: nothing to do until the next readiness, or the connection failed.
    enum PumpResult {
        case waiting
        case failed(errno: Int32, originSide: Bool)
    }

    /// Moves what it can from one side to the other, through `scratch`. Once the source has
    /// ended, the sink is shut for writing, unless the other way has ended too: then both
    /// sockets are about to close, which says the same.
    func pump(toOrigin forward: Bool, scratch: UnsafeMutableRawBufferPointer, now: NIODeadline) -> PumpResult {
        let otherShut = forward ? toClient.shut : toOrigin.shut
        let source = forward ? client : origin
        let sink = forward ? origin : client
        var direction = forward ? toOrigin : toClient
        defer {
            if forward { toOrigin = direction } else { toClient = direction }
        }
        while true {
            if direction.hasPending {
                let count = direction.pending.count - direction.pendingStart
                let written = direction.pending.withUnsafeBytes { bytes in
                    send(sink, bytes.baseAddress! + direction.pendingStart, count, Int32(MSG_NOSIGNAL))
                }
                if written < 0 {
                    if errno == EAGAIN || errno == EINTR { return .waiting }
                    return .failed(errno: errno, originSide: forward)
                }
                lastActivity = now
                direction.pendingStart += written
                guard !direction.hasPending else { continue }
                direction.pending.removeAll(keepingCapacity: false)
                direction.pendingStart = 0
            }
            if direction.ended {
                if !direction.shut {
                    direction.shut = true
                    lastActivity = now
                    if !otherShut { _ = shutdown(sink, Int32(SHUT_WR)) }
                }
                return .waiting
            }
            guard direction.sourceReadable else { return .waiting }
            let read = Glibc.read(source, scratch.baseAddress!, readSize)
            if read < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    direction.sourceReadable = false
                    return .waiting
                }
                return .failed(errno: errno, originSide: !forward)
            }
            lastActivity = now
            if read == 0 {
                direction.ended = true
                direction.sourceReadable = false
                continue
            }
            if forward { record.addIn(read) } else { record.addOut(read) }
            // A short read took all there was: bytes that come later raise a new edge, so only a
            // hang-up already announced needs reading on to its end.
            if read < readSize, !direction.hangingUp { direction.sourceReadable = false }
            var written = 0
            while written < read {
                let sent = send(sink, scratch.baseAddress! + written, read - written, Int32(MSG_NOSIGNAL))
                if sent < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN { break }
                    return .failed(errno: errno, originSide: forward)
                }
                written += sent
            }
            if written < read {
                // The sink is full: keep the rest, and read no more until it is written.
                direction.pending = Array(UnsafeRawBufferPointer(rebasing: scratch[written..<read]))
                direction.pendingStart = 0
                record.held()
            }
        }
    }
}
