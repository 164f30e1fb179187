import EdgeModel
import EdgeProxy
import NIOCore

/// An http application's forwarder fed a client's bytes and an origin's bytes (the first byte
/// says where the one ends and the other begins). Whatever arrives: the same bytes go each way,
/// and the same exchanges are recorded, whether they come whole or a byte at a time; what the
/// client gets is HTTP/1.1 responses; what the origin gets carries the client's address once per
/// request; no request is recorded that was not read, and nothing is sent after a close.
enum HTTPFuzzCheck {
    struct Run: Equatable {
        var toOrigin: [UInt8] = []
        var toClient: [UInt8] = []
        var records: [String] = []
        var connects = 0
        var clientClosed = false
    }

    static let start = NIODeadline.uptimeNanoseconds(0)

    static func run(client: [UInt8], origin: [UInt8], piece: Int) throws(FuzzFinding) -> Run {
        var machine = HTTPForwardingStateMachine(client: .v4(0xC612_0A01), scheme: "http")
        var run = Run()
        func apply(_ actions: [HTTPForwardingStateMachine.Action]) throws(FuzzFinding) {
            for action in actions {
                switch action {
                case .connectOrigin: run.connects += 1
                case .sendToOrigin(let bytes):
                    guard !run.clientClosed else { throw FuzzFinding("bytes for the origin after the client was closed") }
                    run.toOrigin += bytes.readableBytesView
                case .sendToClient(let bytes):
                    guard !run.clientClosed else { throw FuzzFinding("bytes for the client after it was closed") }
                    run.toClient += bytes.readableBytesView
                case .record(let exchange, let message):
                    run.records.append(
                        "\(exchange.method) \(exchange.uri) \(exchange.status ?? 0) \(exchange.bytesIn) \(exchange.bytesOut) \(message ?? "")"
                    )
                case .closeClient: run.clientClosed = true
                case .closeOrigin: break
                }
            }
        }
        for offset in stride(from: 0, to: client.count, by: piece) {
            try apply(machine.clientBytes(ByteBuffer(bytes: client[offset..<min(offset + piece, client.count)]), now: start))
        }
        try apply(machine.originConnected())
        for offset in stride(from: 0, to: origin.count, by: piece) {
            try apply(machine.originBytes(ByteBuffer(bytes: origin[offset..<min(offset + piece, origin.count)])))
        }
        try apply(machine.originClosed())
        try apply(machine.clientClosed())
        return run
    }

    static func count(_ needle: String, in bytes: [UInt8]) -> Int {
        let pattern = Array(needle.utf8)
        guard bytes.count >= pattern.count else { return 0 }
        return (0...(bytes.count - pattern.count)).filter { bytes[$0..<$0 + pattern.count].elementsEqual(pattern) }.count
    }

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let first = bytes.first else { return }
        let cut = min(bytes.count, 1 + Int(first) * 8)
        let client = Array(bytes[1..<cut])
        let origin = Array(bytes[cut...])
        let whole = try run(client: client, origin: origin, piece: max(1, bytes.count))
        // Byte by byte while that stays quick; in small pieces beyond.
        let split = try run(client: client, origin: origin, piece: bytes.count <= 4096 ? 1 : 7)
        guard whole == split else {
            throw FuzzFinding("whole and piecewise differ: \(whole.records) vs \(split.records)")
        }
        if !whole.toClient.isEmpty, !whole.toClient.starts(with: Array("HTTP/1.1 ".utf8)) {
            throw FuzzFinding("the client got something other than an HTTP/1.1 response")
        }
        let forwarded = count("\r\nCF-Connecting-IP: 198.18.10.1\r\n", in: whole.toOrigin)
        guard forwarded == count("\r\nX-Forwarded-Proto: http\r\n", in: whole.toOrigin) else {
            throw FuzzFinding("forwarded requests without the edge's headers")
        }
        guard whole.records.count <= count("\n", in: client) else { throw FuzzFinding("more exchanges recorded than request lines") }
        guard whole.connects <= 1 || whole.toOrigin.count > 0 else { throw FuzzFinding("the origin opened again for nothing") }
    }
}
