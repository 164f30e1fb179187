import EdgeModel
import NIOCore

/// What an entry edge tells the next edge of a relayed connection, in one line before the
/// client's bytes: `EDGESIM-RELAY/1 <app> <client> <edge> <origin> <via>\r\n`, where `via` lists
/// the relays still to come (comma-separated, `-` for none). The exit edge uses the client and
/// edge addresses for the PROXY header, so the origin sees the true client.
public struct RelayHeader: Sendable, Hashable {
    public static let signature = "EDGESIM-RELAY/1"
    public static let maximumLength = 512

    public var app: String
    public var client: Endpoint
    public var edge: Endpoint
    public var origin: Endpoint
    public var via: [String]

    public init(app: String, client: Endpoint, edge: Endpoint, origin: Endpoint, via: [String]) {
        self.app = app
        self.client = client
        self.edge = edge
        self.origin = origin
        self.via = via
    }
}

public struct RelayHeaderError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

extension ByteBuffer {
    public mutating func writeRelayHeader(_ header: RelayHeader) {
        let via = header.via.isEmpty ? "-" : header.via.joined(separator: ",")
        writeString("\(RelayHeader.signature) \(header.app) \(header.client) \(header.edge) \(header.origin) \(via)\r\n")
    }

    /// nil while the line is incomplete; throws on anything else than a well-formed header.
    /// The reader index moves only past a header that was read.
    public mutating func readRelayHeader() throws(RelayHeaderError) -> RelayHeader? {
        let view = readableBytesView.prefix(RelayHeader.maximumLength)
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if readableBytes >= RelayHeader.maximumLength {
                throw RelayHeaderError(description: "relay header longer than \(RelayHeader.maximumLength) bytes")
            }
            return nil
        }
        let length = newline - view.startIndex + 1
        guard length >= 2, view[newline - 1] == UInt8(ascii: "\r"),
            let line = getString(at: readerIndex, length: length - 2), line.utf8.allSatisfy({ $0 >= 0x21 || $0 == 0x20 }),
            line.utf8.allSatisfy({ $0 < 0x7F })
        else { throw RelayHeaderError(description: "relay header is not one line of printable ASCII ending in CRLF") }
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0] == RelayHeader.signature else {
            throw RelayHeaderError(description: "relay header needs '\(RelayHeader.signature) app client edge origin via'")
        }
        guard let client = Endpoint(String(fields[2])), let edge = Endpoint(String(fields[3])), let origin = Endpoint(String(fields[4]))
        else { throw RelayHeaderError(description: "relay header has an address that is not address:port") }
        guard !fields[1].isEmpty, !fields[5].isEmpty else { throw RelayHeaderError(description: "relay header has an empty field") }
        let via = fields[5] == "-" ? [] : fields[5].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard via.allSatisfy({ !$0.isEmpty }), via.count <= 8 else {
            throw RelayHeaderError(description: "relay header lists an empty or too long chain of relays")
        }
        moveReaderIndex(forwardBy: length)
        return RelayHeader(app: String(fields[1]), client: client, edge: edge, origin: origin, via: via)
    }
}
