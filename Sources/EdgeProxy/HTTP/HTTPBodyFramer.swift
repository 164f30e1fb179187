import NIOCore

/// Follows one message body through the bytes that carry it, so a forwarder knows where the
/// message ends without decoding it: a length counted down, or chunked coding read chunk by
/// chunk (size line, data, line end; the last chunk, trailer lines, an empty line). The bytes
/// are passed on as they are.
struct HTTPBodyFramer: Equatable {
    enum State: Equatable {
        case length(remaining: Int)
        /// Reading a chunk-size line: the value so far, its digits, whether past the digits.
        case chunkSize(value: Int, digits: Int, pastDigits: Bool)
        case chunkData(remaining: Int)
        /// The line end after a chunk's data.
        case chunkDataEnd(sawCR: Bool)
        /// Trailer lines after the last chunk, until an empty one; `length` of the current one.
        case trailer(length: Int)
        case untilClose
        case done
    }

    private(set) var state: State
    /// Bytes of content (chunk data, not its framing) seen so far.
    private(set) var contentBytes = 0

    init(_ framing: HTTPHead.Framing) {
        switch framing {
        case .none: state = .done
        case .length(let length): state = length > 0 ? .length(remaining: length) : .done
        case .chunked:
            state = .chunkSize(value: 0, digits: 0, pastDigits: false)
            wasChunked = true
        case .untilClose: state = .untilClose
        }
    }

    var isDone: Bool { state == .done }
    /// The body came in chunked coding.
    private(set) var wasChunked = false

    /// Most hex digits a chunk size may have (a size below 2^60).
    static let maximumSizeDigits = 15

    /// What `take` found: how many of the buffer's first bytes belong to this body, whether it
    /// ends with them, and, if the body breaks its framing, why (the bytes before that count).
    struct Taken: Equatable {
        var count: Int
        var ended: Bool
        var error: HTTPHeadError?
    }

    /// Follows the body through the buffer's bytes (without consuming them).
    mutating func take(_ buffer: ByteBuffer) -> Taken {
        switch state {
        case .done:
            return Taken(count: 0, ended: true)
        case .untilClose:
            contentBytes += buffer.readableBytes
            return Taken(count: buffer.readableBytes, ended: false)
        case .length(let remaining):
            let count = min(remaining, buffer.readableBytes)
            contentBytes += count
            state = remaining == count ? .done : .length(remaining: remaining - count)
            return Taken(count: count, ended: state == .done)
        default:
            var error: HTTPHeadError?
            let count = buffer.withUnsafeReadableBytes { bytes in chunked(bytes, error: &error) }
            return Taken(count: count, ended: state == .done, error: error)
        }
    }

    /// Steps through chunked coding; the bytes used (all of them, unless the body ends first or
    /// breaks: then those before the break, and `error` says what).
    private mutating func chunked(_ bytes: UnsafeRawBufferPointer, error: inout HTTPHeadError?) -> Int {
        var index = 0
        do throws(HTTPHeadError) {
            try chunkedSteps(bytes, index: &index)
        } catch let broken {
            error = broken
        }
        return index
    }

    /// From `index` on, until the bytes or the body end; `index` is where it got to.
    private mutating func chunkedSteps(_ bytes: UnsafeRawBufferPointer, index: inout Int) throws(HTTPHeadError) {
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .chunkSize(let value, let digits, let pastDigits):
                if byte == UInt8(ascii: "\n") {
                    guard digits > 0 else { throw HTTPHeadError("a chunk without a size") }
                    state = value == 0 ? .trailer(length: 0) : .chunkData(remaining: value)
                } else if !pastDigits, let digit = Self.hexValue(byte) {
                    guard digits < Self.maximumSizeDigits else { throw HTTPHeadError("a chunk size of more than 15 hex digits") }
                    state = .chunkSize(value: value << 4 | digit, digits: digits + 1, pastDigits: false)
                } else if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
                {
                    // Extensions (and the CR of the line end) are passed on unread.
                    guard digits > 0 else { throw HTTPHeadError("a chunk without a size") }
                    state = .chunkSize(value: value, digits: digits, pastDigits: true)
                } else if !pastDigits {
                    throw HTTPHeadError("a chunk size that is not hexadecimal")
                }
                index += 1
            case .chunkData(let remaining):
                let count = min(remaining, bytes.count - index)
                contentBytes += count
                index += count
                state = remaining == count ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - count)
            case .chunkDataEnd(let sawCR):
                if byte == UInt8(ascii: "\r"), !sawCR {
                    state = .chunkDataEnd(sawCR: true)
                } else if byte == UInt8(ascii: "\n") {
                    state = .chunkSize(value: 0, digits: 0, pastDigits: false)
                } else {
                    throw HTTPHeadError("chunk data longer than its size")
                }
                index += 1
            case .trailer(let length):
                index += 1
                if byte == UInt8(ascii: "\n") {
                    if length == 0 {
                        state = .done
                        return
                    }
                    state = .trailer(length: 0)
                } else if byte != UInt8(ascii: "\r") {
                    guard length < 8192 else { throw HTTPHeadError("a trailer line longer than 8192 bytes") }
                    state = .trailer(length: length + 1)
                }
            case .done:
                return
            case .length, .untilClose:
                // Not chunked: `take` counts these itself.
                return
            }
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
