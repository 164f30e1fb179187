import EdgeRouting
import NIOCore

/// Datagrams between edge nodes measuring each other: a request carries a token; the reply
/// echoes it and carries what the answering node measures now (its table), so every edge
/// learns the segments it cannot probe itself. Binary: "ESP", version 1, type, token, then for
/// a reply or an update a count and entries (key length, key, RTT and variation in µs, loss in
/// 1/10,000, answering). An update is a reply nobody asked for (type 3, token 0).
public enum ProbeMessage: Sendable, Hashable {
    case request(token: UInt64)
    case reply(token: UInt64, table: [String: PathMeasurement])
    /// Sent unasked when what a node measures changed, so peers need not wait for their next probe.
    case update(table: [String: PathMeasurement])

    static let magic: [UInt8] = [0x45, 0x53, 0x50, 0x01]
    /// Most entries a reply may carry: a fleet of 1,000 nodes fits, and a hostile count does not
    /// make the reader allocate.
    public static let maximumEntries = 4096
}

public struct ProbeMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

extension ByteBuffer {
    public mutating func writeProbeMessage(_ message: ProbeMessage) {
        writeBytes(ProbeMessage.magic)
        switch message {
        case .request(let token):
            writeInteger(UInt8(1))
            writeInteger(token)
        case .reply(let token, let table):
            writeInteger(UInt8(2))
            writeInteger(token)
            writeTable(table)
        case .update(let table):
            writeInteger(UInt8(3))
            writeInteger(UInt64(0))
            writeTable(table)
        }
    }

    private mutating func writeTable(_ table: [String: PathMeasurement]) {
        let entries = table.sorted { $0.key < $1.key }.filter { !$0.key.utf8.isEmpty && $0.key.utf8.count <= 255 }
            .prefix(ProbeMessage.maximumEntries)
        writeInteger(UInt16(entries.count))
        for (key, measurement) in entries {
            writeInteger(UInt8(key.utf8.count))
            writeString(key)
            writeInteger(Self.micros(measurement.rtt))
            writeInteger(Self.micros(measurement.variation))
            writeInteger(UInt16(max(0, min(10_000, (measurement.loss * 10_000).rounded()))))
            writeInteger(UInt8(measurement.answering ? 1 : 0))
        }
    }

    private static func micros(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        let value = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return UInt32(clamping: max(0, value))
    }

    /// Reads one whole datagram; throws unless it is exactly one well-formed message.
    public mutating func readProbeMessage() throws(ProbeMessageError) -> ProbeMessage {
        var copy = self
        guard copy.readBytes(length: 4) == ProbeMessage.magic, let type = copy.readInteger(as: UInt8.self),
            let token = copy.readInteger(as: UInt64.self)
        else { throw ProbeMessageError(description: "not a probe message") }
        switch type {
        case 1:
            guard copy.readableBytes == 0 else { throw ProbeMessageError(description: "bytes after a probe request") }
            self = copy
            return .request(token: token)
        case 2, 3:
            guard let count = copy.readInteger(as: UInt16.self), Int(count) <= ProbeMessage.maximumEntries else {
                throw ProbeMessageError(description: "probe reply with a bad entry count")
            }
            var table: [String: PathMeasurement] = [:]
            for _ in 0..<count {
                guard let keyLength = copy.readInteger(as: UInt8.self), keyLength > 0,
                    let key = copy.readString(length: Int(keyLength)), let rtt = copy.readInteger(as: UInt32.self),
                    let variation = copy.readInteger(as: UInt32.self), let loss = copy.readInteger(as: UInt16.self), loss <= 10_000,
                    let answering = copy.readInteger(as: UInt8.self), answering <= 1
                else { throw ProbeMessageError(description: "probe reply entry cut short or out of range") }
                table[key] = PathMeasurement(
                    rtt: .microseconds(Int64(rtt)), variation: .microseconds(Int64(variation)), loss: Double(loss) / 10_000,
                    answering: answering == 1)
            }
            guard copy.readableBytes == 0 else { throw ProbeMessageError(description: "bytes after a probe reply") }
            self = copy
            return type == 2 ? .reply(token: token, table: table) : .update(table: table)
        default:
            throw ProbeMessageError(description: "unknown probe message type \(type)")
        }
    }
}
