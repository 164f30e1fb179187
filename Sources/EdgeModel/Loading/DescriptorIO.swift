import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads and writes on a file handle that carry on when a signal interrupts the call (EINTR).
/// Foundation's `readDataToEndOfFile()`, `availableData` and `write(_:)` end the process on
/// any error, EINTR included, so no code here uses them.
extension FileHandle {
    public struct IOFailure: Error, CustomStringConvertible {
        public var operation: String
        public var code: Int32
        public var description: String { "\(operation) failed: \(String(cString: strerror(code)))" }
    }

    /// What can be read now, waiting until something can; empty at end of file.
    public func readSome(upTo limit: Int = 65_536) throws -> Data {
        var buffer = [UInt8](repeating: 0, count: max(1, limit))
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count >= 0 { return Data(buffer[0..<count]) }
            if errno != EINTR { throw IOFailure(operation: "read", code: errno) }
        }
    }

    /// What can be read now; empty at end of file and also when reading fails.
    public func readSomeOrEnd() -> Data {
        (try? readSome()) ?? Data()
    }

    /// Everything up to end of file.
    public func readAll() throws -> Data {
        var collected = Data()
        while true {
            let chunk = try readSome()
            if chunk.isEmpty { return collected }
            collected.append(chunk)
        }
    }

    /// All of `data`, however many calls that takes.
    public func writeAll(_ data: Data) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if count >= 0 {
                    offset += count
                } else if errno != EINTR {
                    throw IOFailure(operation: "write", code: errno)
                }
            }
        }
    }
}
