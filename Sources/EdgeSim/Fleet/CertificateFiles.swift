import Foundation

/// The fleet's certificate folder as it travels to node hosts elsewhere (`hello`, `files`): every
/// file by name. Read on the runner's side, written into a folder of the session's on the host's,
/// where names and sizes are checked first, since they come over the network.
public enum CertificateFiles {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// At most this many files, each at most this big: a CA and a certificate and key per application.
    static let fileLimit = 1_024
    static let sizeLimit = 64 * 1024

    /// Every regular file in `folder` by name; empty when there is no folder.
    public static func read(_ folder: String) throws -> [String: String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var files: [String: String] = [:]
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = folder + "/" + name
            var directory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &directory), !directory.boolValue else { continue }
            files[name] = try String(contentsOfFile: path, encoding: .utf8)
        }
        return files
    }

    /// Why `files` cannot be written; nil when every name is a plain file name and every size
    /// within bounds.
    public static func problem(_ files: [String: String]) -> String? {
        guard files.count <= fileLimit else { return "\(files.count) certificate files (at most \(fileLimit))" }
        for (name, text) in files {
            let plain =
                !name.isEmpty && name.count <= 128 && !name.hasPrefix(".")
                && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
            guard plain else { return "certificate file name \(name.debugDescription) is not a plain file name" }
            guard text.utf8.count <= sizeLimit else { return "certificate file \(name) is over \(sizeLimit / 1024) KiB" }
        }
        return nil
    }

    /// Writes `files` into `folder` (made if missing); keys readable by the owner only.
    public static func write(_ files: [String: String], into folder: String) throws {
        if let problem = problem(files) { throw Failure(description: problem) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in files {
            let path = folder + "/" + name
            let secret = name.hasSuffix("-key.pem")
            guard
                FileManager.default.createFile(
                    atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: secret ? 0o600 : 0o644])
            else { throw Failure(description: "cannot write \(path)") }
        }
    }
}
