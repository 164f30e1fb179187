import EdgeModel
import EdgeNet
import EdgeProxy
import NIOCore

/// What edges say to each other for smart routing: probe datagrams (requests, replies with
/// measurement tables, updates, relayed UDP) and the relay header in front of a relayed TCP
/// connection; and the frames packets cross between pods in (`PodTunnelFrame`). A message that
/// reads, written again, reads the same; a relay header gives the same result whole and split,
/// and leaves the reader alone until it is complete; a datagram that is no frame is left unread.
enum RelayFuzzCheck {
    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        var frame = ByteBuffer(bytes: bytes)
        if let (id, packet) = PodTunnelFrame.read(&frame) {
            var written = ByteBuffer()
            PodTunnelFrame.write(id: id, packet: packet, into: &written)
            guard Array(written.readableBytesView) == bytes else { throw FuzzFinding("a pod tunnel frame does not survive writing") }
        } else if frame.readableBytes != bytes.count {
            throw FuzzFinding("a datagram refused as a pod tunnel frame was read from")
        }
        var datagram = ByteBuffer(bytes: bytes)
        if let message = try? datagram.readProbeMessage() {
            var written = ByteBuffer()
            written.writeProbeMessage(message)
            guard let again = try? written.readProbeMessage() else { throw FuzzFinding("a probe message does not read back once written") }
            guard again == message else { throw FuzzFinding("a probe message changed in a write and read: \(message) became \(again)") }
        }
        let whole = header(bytes)
        for cut in 0..<min(bytes.count, 600) {
            let part = header(Array(bytes[..<cut]))
            guard part == .needMore || part == whole else { throw FuzzFinding("relay header prefix of \(cut) bytes read differently") }
        }
        if case .read(let read, _) = whole {
            var written = ByteBuffer()
            written.writeRelayHeader(read)
            guard case .read(let again, _) = header(Array(written.readableBytesView)), again == read else {
                throw FuzzFinding("a relay header does not survive writing: \(read)")
            }
        }
    }

    enum Outcome: Equatable {
        case read(RelayHeader, consumed: Int)
        case needMore
        case refused
    }

    static func header(_ bytes: [UInt8]) -> Outcome {
        var buffer = ByteBuffer(bytes: bytes)
        do {
            guard let header = try buffer.readRelayHeader() else { return buffer.readerIndex == 0 ? .needMore : .refused }
            return .read(header, consumed: buffer.readerIndex)
        } catch {
            return buffer.readerIndex == 0 ? .refused : .read(RelayHeader.moved, consumed: -1)
        }
    }
}

extension RelayHeader {
    /// Stands for "the reader moved on a refused header", which a check reports as different.
    fileprivate static let moved = RelayHeader(
        app: "", client: Endpoint(.v4(0), 0), edge: Endpoint(.v4(0), 0), origin: Endpoint(.v4(0), 0), via: [])
}
