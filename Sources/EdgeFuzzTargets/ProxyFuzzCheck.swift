import EdgeProxy
import NIOCore

/// The PROXY v1/v2 and SPP decoders: whole input and every split of it give the same result;
/// a decoder that needs more bytes or refuses leaves the reader where it was; a header that
/// decodes, encoded again, decodes to the same header and fits the protocol's size.
enum ProxyFuzzCheck {
    enum Outcome: Equatable {
        case header(ProxyHeader, consumed: Int)
        case needMore
        case refused
    }

    static func decode(_ bytes: [UInt8], v1: Bool) throws(FuzzFinding) -> Outcome {
        var buffer = ByteBuffer(bytes: bytes)
        let before = buffer.readerIndex
        do {
            let header = try v1 ? buffer.readProxyV1() : buffer.readProxyV2()
            guard let header else {
                guard buffer.readerIndex == before else { throw FuzzFinding("reader moved while waiting for more bytes") }
                return .needMore
            }
            return .header(header, consumed: buffer.readerIndex - before)
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            guard buffer.readerIndex == before else { throw FuzzFinding("reader moved on a refused header") }
            return .refused
        }
    }

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        for v1 in [true, false] {
            let whole = try decode(bytes, v1: v1)
            // Fed as it arrives: every prefix either needs more, or gives what the whole gives.
            for cut in 0..<min(bytes.count, 600) {
                switch try decode(Array(bytes[..<cut]), v1: v1) {
                case .needMore: continue
                case .refused:
                    guard whole == .refused else { throw FuzzFinding("prefix of \(cut) bytes refused, the whole was not (v1: \(v1))") }
                case .header(let header, let consumed):
                    guard whole == .header(header, consumed: consumed) else {
                        throw FuzzFinding("prefix of \(cut) bytes decoded differently from the whole (v1: \(v1))")
                    }
                }
            }
            guard case .header(let header, let consumed) = whole else { continue }
            guard consumed <= (v1 ? 107 : 536 + 16) else { throw FuzzFinding("header of \(consumed) bytes accepted (v1: \(v1))") }
            var again = ByteBuffer()
            _ = v1 ? again.writeProxyV1(header) : again.writeProxyV2(header)
            guard case .header(let reread, _) = try decode(Array(again.readableBytesView), v1: v1), reread == header else {
                throw FuzzFinding("a decoded header does not survive encoding (v1: \(v1)): \(header)")
            }
        }
        var datagram = ByteBuffer(bytes: bytes)
        if let header = try? datagram.readSimpleProxyHeader() {
            var again = ByteBuffer()
            _ = again.writeSimpleProxyHeader(header)
            guard (try? again.readSimpleProxyHeader()) == header else { throw FuzzFinding("an SPP header does not survive encoding") }
        }
    }
}
