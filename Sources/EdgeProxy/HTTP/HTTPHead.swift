import NIOCore

/// Why a request or response head cannot be forwarded.
struct HTTPHeadError: Error, Equatable, CustomStringConvertible {
    var description: String
    /// A head longer than the limit (the request answer is 431 then, not 400).
    var tooLarge = false

    init(_ description: String, tooLarge: Bool = false) {
        self.description = description
        self.tooLarge = tooLarge
    }
}

/// An HTTP/1.x request or response head, parsed only as far as a forwarding proxy needs: the
/// start line, where each header line lies, which lines belong to the connection rather than the
/// message, and what frames the body. The bytes are kept, and copied on line by line, so a
/// forwarded head is the client's own but for the lines the edge drops or adds.
struct HTTPHead: Equatable {
    enum Kind: Equatable {
        case request
        case response
    }

    /// How the message's body is delimited (RFC 9112, section 6).
    enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
        /// A response without a length: its body ends when the origin closes.
        case untilClose
    }

    let kind: Kind
    /// The whole head, its empty last line included.
    let bytes: [UInt8]
    /// Request: method and target as sent.
    private(set) var method = ""
    private(set) var target = ""
    /// Response: the status code.
    private(set) var status = 0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    private(set) var minorVersion = 1
    /// Where the start line's text after the version lies (response: status and reason).
    private var statusText: Range<Int> = 0..<0
    /// Each header line (without its line end), and whether the edge drops it.
    private(set) var lines: [Line] = []

    struct Line: Equatable {
        var range: Range<Int>
        var dropped: Bool
    }
    /// Values of X-Forwarded-For lines (requests), in order.
    private(set) var forwardedFor: [Range<Int>] = []
    private(set) var contentLength: Int?
    private(set) var chunked = false
    /// The sender closes after this message: `Connection: close`, or HTTP/1.0 without keep-alive.
    private(set) var closes = false

    /// Headers that describe one connection, not the message: dropped both ways.
    static let hopByHop: [StaticString] = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"]
    /// Headers the edge writes itself on a request.
    static let written: [StaticString] = ["x-forwarded-for", "x-forwarded-proto", "cf-connecting-ip"]

    /// The head at the front of `buffer`; nil while its last line has not come (and it is
    /// still within `limit` bytes).
    static func parse(_ buffer: ByteBuffer, kind: Kind, limit: Int) throws(HTTPHeadError) -> HTTPHead? {
        guard let length = endOfHead(buffer, limit: limit) else {
            if buffer.readableBytes > limit { throw HTTPHeadError("a head longer than \(limit) bytes", tooLarge: true) }
            return nil
        }
        var head = HTTPHead(kind: kind, bytes: buffer.getBytes(at: buffer.readerIndex, length: length)!)
        try head.readLines()
        return head
    }

    private init(kind: Kind, bytes: [UInt8]) {
        self.kind = kind
        self.bytes = bytes
    }

    /// The length of the head: up to and including the first empty line (CRLF or a bare LF).
    private static func endOfHead(_ buffer: ByteBuffer, limit: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let count = min(bytes.count, limit)
            var index = 0
            while index < count {
                if bytes[index] == UInt8(ascii: "\n") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { return index + 2 }
                    if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\r"), bytes[index + 2] == UInt8(ascii: "\n") {
                        return index + 3
                    }
                }
                index += 1
            }
            return nil
        }
    }

    private mutating func readLines() throws(HTTPHeadError) {
        // A line each, made room for at once.
        lines.reserveCapacity(bytes.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 })
        var start = 0
        var first = true
        var keepAlive = false
        while start < bytes.count {
            var end = start
            while bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let next = end + 1
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end == start { break }
            if first {
                try readStartLine(start..<end)
                first = false
            } else {
                try readField(start..<end, keepAlive: &keepAlive)
            }
            start = next
        }
        if first { throw HTTPHeadError("an empty head") }
        if minorVersion == 0, !keepAlive { closes = true }
        if chunked, contentLength != nil {
            // A request with both is how requests are smuggled past proxies (RFC 9112, 6.1).
            if kind == .request { throw HTTPHeadError("both Content-Length and Transfer-Encoding") }
            contentLength = nil
        }
    }

    private func text(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    private func byte(_ offset: Int) -> UInt8 { bytes[offset] }

    private mutating func readStartLine(_ line: Range<Int>) throws(HTTPHeadError) {
        switch kind {
        case .request:
            // method SP target SP HTTP/1.x
            var index = line.lowerBound
            while index < line.upperBound, Self.isToken(byte(index)) { index += 1 }
            guard index > line.lowerBound, index < line.upperBound, byte(index) == UInt8(ascii: " ") else {
                throw HTTPHeadError("a request line that does not start with a method: '\(text(line).prefix(40))'")
            }
            let methodRange = line.lowerBound..<index
            let targetStart = index + 1
            index = targetStart
            while index < line.upperBound, byte(index) > 0x20, byte(index) != 0x7F { index += 1 }
            guard index > targetStart, index < line.upperBound, byte(index) == UInt8(ascii: " ") else {
                throw HTTPHeadError("a request line without a target and version: '\(text(line).prefix(40))'")
            }
            minorVersion = try version(index + 1..<line.upperBound)
            method = text(methodRange)
            target = text(targetStart..<index)
        case .response:
            // HTTP/1.x SP 3DIGIT [SP reason]
            guard line.count >= 12 else { throw HTTPHeadError("a status line too short: '\(text(line))'") }
            minorVersion = try version(line.lowerBound..<line.lowerBound + 8)
            guard byte(line.lowerBound + 8) == UInt8(ascii: " ") else {
                throw HTTPHeadError("a status line without a space after the version")
            }
            var code = 0
            for offset in 9..<12 {
                let digit = byte(line.lowerBound + offset)
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else {
                    throw HTTPHeadError("a status line without a 3-digit status: '\(text(line).prefix(40))'")
                }
                code = code * 10 + Int(digit - UInt8(ascii: "0"))
            }
            guard line.count == 12 || byte(line.lowerBound + 12) == UInt8(ascii: " ") else {
                throw HTTPHeadError("a status line without a space after the status")
            }
            status = code
            statusText = line.lowerBound + 9..<line.upperBound
        }
    }

    private func version(_ range: Range<Int>) throws(HTTPHeadError) -> Int {
        guard range.count == 8, bytes[range.lowerBound..<range.lowerBound + 7].elementsEqual("HTTP/1.".utf8) else {
            throw HTTPHeadError("not HTTP/1.0 or HTTP/1.1: '\(text(range).prefix(20))'")
        }
        switch byte(range.lowerBound + 7) {
        case UInt8(ascii: "0"): return 0
        case UInt8(ascii: "1"): return 1
        default: throw HTTPHeadError("not HTTP/1.0 or HTTP/1.1: '\(text(range))'")
        }
    }

    private mutating func readField(_ line: Range<Int>, keepAlive: inout Bool) throws(HTTPHeadError) {
        guard byte(line.lowerBound) != UInt8(ascii: " "), byte(line.lowerBound) != UInt8(ascii: "\t") else {
            throw HTTPHeadError("a folded header line (obsolete line folding is refused)")
        }
        var colon = line.lowerBound
        while colon < line.upperBound, Self.isToken(byte(colon)) { colon += 1 }
        guard colon > line.lowerBound, colon < line.upperBound, byte(colon) == UInt8(ascii: ":") else {
            throw HTTPHeadError("a header line that is not 'name: value': '\(text(line).prefix(40))'")
        }
        var valueStart = colon + 1
        var valueEnd = line.upperBound
        while valueStart < valueEnd, byte(valueStart) == UInt8(ascii: " ") || byte(valueStart) == UInt8(ascii: "\t") { valueStart += 1 }
        while valueEnd > valueStart, byte(valueEnd - 1) == UInt8(ascii: " ") || byte(valueEnd - 1) == UInt8(ascii: "\t") { valueEnd -= 1 }
        for offset in valueStart..<valueEnd where byte(offset) < 0x20 && byte(offset) != UInt8(ascii: "\t") || byte(offset) == 0x7F {
            throw HTTPHeadError("a control character in the value of \(text(line.lowerBound..<colon))")
        }
        let name = line.lowerBound..<colon
        let value = valueStart..<valueEnd
        var dropped = false
        if matches(name, "content-length") {
            guard value.count > 0, value.count <= 15, value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte($0)) })
            else {
                throw HTTPHeadError("a Content-Length that is not a number: '\(text(value).prefix(20))'")
            }
            let length = Int(text(value))!
            if let contentLength, contentLength != length { throw HTTPHeadError("two different Content-Length values") }
            contentLength = length
        } else if matches(name, "transfer-encoding") {
            let last = text(value).split(separator: ",").last?.trimmingSpaces.lowercased()
            if last == "chunked" {
                chunked = true
            } else if kind == .request {
                throw HTTPHeadError("a Transfer-Encoding that does not end in chunked: '\(text(value).prefix(40))'")
            }
        } else if matches(name, "connection") {
            for token in text(value).split(separator: ",") {
                switch token.trimmingSpaces.lowercased() {
                case "close": closes = true
                case "keep-alive": keepAlive = true
                default: break
                }
            }
            dropped = true
        } else if Self.hopByHop.contains(where: { matches(name, $0) }) {
            dropped = true
        } else if kind == .request, Self.written.contains(where: { matches(name, $0) }) {
            if matches(name, "x-forwarded-for"), !value.isEmpty { forwardedFor.append(value) }
            dropped = true
        }
        lines.append(Line(range: line, dropped: dropped))
    }

    /// Whether the bytes in `range` are `lowercase` in any case.
    private func matches(_ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            var offset = range.lowerBound
            for want in expected {
                // ASCII letters compare without case; other bytes as they are.
                guard bytes[offset] | 0x20 == want || bytes[offset] == want else { return false }
                offset += 1
            }
            return true
        }
    }

    /// RFC 9110 token characters.
    private static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    // MARK: Framing

    /// How the body of this message is delimited; `method` is the request's for a response
    /// (a response to HEAD has none).
    func framing(requestMethod: String = "") -> Framing {
        switch kind {
        case .request:
            if chunked { return .chunked }
            return contentLength.map { $0 > 0 ? .length($0) : .none } ?? .none
        case .response:
            if status < 200 || status == 204 || status == 304 || requestMethod == "HEAD" { return .none }
            if chunked { return .chunked }
            if let contentLength { return contentLength > 0 ? .length(contentLength) : .none }
            return .untilClose
        }
    }

    // MARK: Forwarding

    /// The request as the origin gets it: HTTP/1.1, connection headers dropped (the origin
    /// connection is kept alive whatever the client asked), the client's address appended to
    /// `X-Forwarded-For` and given as `CF-Connecting-IP`, the scheme as `X-Forwarded-Proto`.
    func forwardedRequest(client: String, scheme: String) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: bytes.count + 96 + client.utf8.count * 2)
        out.writeString(method)
        out.writeInteger(UInt8(ascii: " "))
        out.writeString(target)
        out.writeStaticString(" HTTP/1.1\r\n")
        writeKeptLines(to: &out)
        out.writeStaticString("X-Forwarded-For: ")
        for earlier in forwardedFor {
            out.writeBytes(bytes[earlier])
            out.writeStaticString(", ")
        }
        out.writeString(client)
        out.writeStaticString("\r\nX-Forwarded-Proto: ")
        out.writeString(scheme)
        out.writeStaticString("\r\nCF-Connecting-IP: ")
        out.writeString(client)
        out.writeStaticString("\r\n\r\n")
        return out
    }

    /// The response as the client gets it: HTTP/1.1, the origin's connection headers dropped,
    /// `Connection: close` when the edge closes after it.
    func forwardedResponse(closing: Bool) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: bytes.count + 32)
        out.writeStaticString("HTTP/1.1 ")
        out.writeBytes(bytes[statusText])
        out.writeStaticString("\r\n")
        writeKeptLines(to: &out)
        if closing { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
        return out
    }

    private func writeKeptLines(to out: inout ByteBuffer) {
        for line in lines where !line.dropped {
            out.writeBytes(bytes[line.range])
            out.writeStaticString("\r\n")
        }
    }

    /// A response of the edge's own: status, a line of text, and `Connection: close` if asked.
    static func answer(status: Int, reason: String, message: String, closing: Bool) -> ByteBuffer {
        let body = "\(status) \(reason): \(message)\n"
        var out = ByteBuffer()
        out.writeString(
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: edgesim\r\n"
                + (closing ? "Connection: close\r\n" : "") + "\r\n" + body)
        return out
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}
