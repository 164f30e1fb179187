import EdgeModel
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
    /// A smart-routed UDP datagram on its way through this edge: the bytes for the origin (already
    /// framed with SPP or PROXY v2 by the entry edge), where they go, and the relays still to come.
    case relay(RelayDatagram)

    static let magic: [UInt8] = [0x45, 0x53, 0x50, 0x01]
    /// Most entries a reply may carry: a fleet of 1,000 nodes fits, and a hostile count does not
    /// make the reader allocate.
    public static let maximumEntries = 4096
}

public struct RelayDatagram: Sendable, Hashable {
    public var app: String
    public var origin: Endpoint
    public var via: [String]
    public var payload: ByteBuffer

    public init(app: String, origin: Endpoint, via: [String], payload: ByteBuffer) {
        self.app = app
        self.origin = origin
        self.via = via
        self.payload = payload
    }
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
        case .relay(let datagram):
            writeInteger(UInt8(4))
            writeInteger(UInt64(0))
            writeShortString(datagram.app)
            switch datagram.origin.address {
            case .v4(let value):
                writeInteger(UInt8(4))
                writeInteger(value)
            case .v6(let value):
                writeInteger(UInt8(6))
                writeInteger(UInt64(truncatingIfNeeded: value >> 64))
                writeInteger(UInt64(truncatingIfNeeded: value))
            }
            writeInteger(datagram.origin.port)
            writeInteger(UInt8(min(datagram.via.count, 8)))
            for name in datagram.via.prefix(8) { writeShortString(name) }
            writeImmutableBuffer(datagram.payload)
        }
    }

    private mutating func writeShortString(_ text: String) {
        let bytes = Array(text.utf8.prefix(255))
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
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
                    let key = copy.readPrintableName(length: Int(keyLength)), let rtt = copy.readInteger(as: UInt32.self),
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
        case 4:
            func shortString() throws(ProbeMessageError) -> String {
                guard let length = copy.readInteger(as: UInt8.self), length > 0, let text = copy.readPrintableName(length: Int(length))
                else {
                    throw ProbeMessageError(description: "relay datagram with a cut, empty or unprintable name")
                }
                return text
            }
            let app = try shortString()
            let address: IPAddress
            switch copy.readInteger(as: UInt8.self) {
            case 4:
                guard let value = copy.readInteger(as: UInt32.self) else {
                    throw ProbeMessageError(description: "relay datagram cut short")
                }
                address = .v4(value)
            case 6:
                guard let high = copy.readInteger(as: UInt64.self), let low = copy.readInteger(as: UInt64.self) else {
                    throw ProbeMessageError(description: "relay datagram cut short")
                }
                address = .v6(UInt128(high) << 64 | UInt128(low))
            default:
                throw ProbeMessageError(description: "relay datagram with an unknown address family")
            }
            guard let port = copy.readInteger(as: UInt16.self), let count = copy.readInteger(as: UInt8.self), count <= 8 else {
                throw ProbeMessageError(description: "relay datagram cut short or with too many relays")
            }
            var via: [String] = []
            for _ in 0..<count { via.append(try shortString()) }
            let payload = copy.readSlice(length: copy.readableBytes)!
            self = copy
            return .relay(RelayDatagram(app: app, origin: Endpoint(address, port), via: via, payload: payload))
        default:
            throw ProbeMessageError(description: "unknown probe message type \(type)")
        }
    }
}

extension ByteBuffer {
    /// A name edges exchange (node, application, origin): printable ASCII only, so it reads and
    /// writes back byte for byte; nil when cut short or anything else.
    fileprivate mutating func readPrintableName(length: Int) -> String? {
        guard let bytes = getBytes(at: readerIndex, length: length), bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            return nil
        }
        moveReaderIndex(forwardBy: length)
        return String(decoding: bytes, as: UTF8.self)
    }
}
