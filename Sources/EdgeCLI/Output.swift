import EdgeModel
import Foundation

/// Writes a line to standard error.
func printError(_ message: String) {
    try? FileHandle.standardError.writeAll(Data((message + "\n").utf8))
}

/// Writes a line to standard output at once, so a long-running command's status shows up even
/// when its output is a pipe.
func say(_ message: String) {
    try? FileHandle.standardOutput.writeAll(Data((message + "\n").utf8))
}
