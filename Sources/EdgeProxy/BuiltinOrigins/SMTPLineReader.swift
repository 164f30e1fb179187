/// Splits what a mail client sends into lines: ends at LF, an optional CR before it dropped.
/// A line longer than `SMTPServerStateMachine.maxLine` bytes keeps its first bytes and is
/// marked too long (the rest is not stored, so a client cannot grow memory with one line).
public struct SMTPLineReader: Sendable {
    public struct Line: Sendable, Hashable {
        public var text: String
        public var tooLong: Bool
    }

    private var line: [UInt8] = []
    private var tooLong = false

    public init() {}

    /// The lines `bytes` completes; a partial line waits for the next call.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Line] {
        var lines: [Line] = []
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                if line.count < SMTPServerStateMachine.maxLine { line.append(byte) } else { tooLong = true }
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            lines.append(Line(text: String(decoding: line, as: UTF8.self), tooLong: tooLong))
            line = []
            tooLong = false
        }
        return lines
    }
}
