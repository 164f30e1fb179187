import EdgeCLI
import Foundation
import Testing

@Suite struct ValidateCommandTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    @Test func allExamplesValidateWithExitZero() async throws {
        let folders = ["topologies", "scenarios"]
        let files = try folders.flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: path(folder)).filter { $0.hasSuffix(".yaml") }.map {
                path("\(folder)/\($0)")
            }
        }
        #expect(files.count >= 6)
        #expect(await EdgesimMain.run(["validate", "--quiet"] + files) == 0)
    }

    @Test func anInvalidFileExitsOne() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-cli-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try "protocol: tcp/22\ndns: {type: CNAME, name: a.example}\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(await EdgesimMain.run(["validate", "--quiet", file.path]) == 1)
        #expect(await EdgesimMain.run(["validate", "--quiet", "/nonexistent/edgesim.yaml"]) == 1)
    }

    @Test func usageErrorsExitTwo() async {
        #expect(await EdgesimMain.run(["validate"]) == 2)
        #expect(await EdgesimMain.run(["validate", "--kind", "nonsense", path("topologies/lab-3.yaml")]) == 2)
        #expect(await EdgesimMain.run(["no-such-command"]) == 2)
    }

    @Test func helpExitsZero() async {
        #expect(await EdgesimMain.run(["--help"]) == 0)
        #expect(await EdgesimMain.run(["validate", "--help"]) == 0)
    }

    @Test func kindCanBeForced() async {
        // A topology read as applications is not a valid application object.
        #expect(await EdgesimMain.run(["validate", "--quiet", "--kind", "applications", path("topologies/lab-3.yaml")]) == 1)
        #expect(await EdgesimMain.run(["validate", "--quiet", "--kind", "topology", path("topologies/lab-3.yaml")]) == 0)
    }
}
