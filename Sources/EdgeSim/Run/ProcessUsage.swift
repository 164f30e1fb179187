import Foundation

/// What a process holds: resident memory and open descriptors, read from /proc.
public struct ProcessUsage: Sendable, Hashable, Codable {
    public var rssBytes: UInt64
    public var descriptors: Int

    /// nil when the process is gone or /proc cannot be read.
    public static func of(_ pid: Int32) -> ProcessUsage? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = UInt64(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        else { return nil }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return ProcessUsage(rssBytes: kilobytes * 1024, descriptors: descriptors)
    }
}
