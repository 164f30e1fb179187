import EdgeModel
import Foundation

/// A topology read from YAML text, through the same loader users' files go through.
func topology(_ text: String) throws -> Topology {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-routing-\(UUID().uuidString).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try ConfigLoader().loadTopology(path).value
}
