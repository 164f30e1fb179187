import Foundation

/// Runs iproute2's `ip`, feeding it a batch of commands on standard input.
public enum IPCommand {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `ip [-n namespace] -batch -` with one command a line; throws with ip's own message.
    public static func batch(_ lines: [String], namespace: String? = nil) throws {
        guard !lines.isEmpty else { return }
        var arguments = ["-force", "-batch", "-"]
        if let namespace { arguments = ["-n", namespace] + arguments }
        try run(arguments, input: lines.joined(separator: "\n") + "\n")
    }

    @discardableResult
    public static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        let feed = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input == nil ? FileHandle.nullDevice : feed
        try process.run()
        if let input {
            feed.fileHandleForWriting.write(Data(input.utf8))
            try? feed.fileHandleForWriting.close()
        }
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complaint = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: complaint, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "ip \(arguments.prefix(3).joined(separator: " ")): \(message)")
        }
        return String(decoding: printed, as: UTF8.self)
    }

    public static var executable: String {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"
    }
}
