import Foundation
import Testing

/// Debian's Chromium without a screen: a page opened as a browser opens it, its DOM after
/// loading, and whatever its console said (Chromium logs console messages and uncaught errors
/// as `:CONSOLE` lines when logging to stderr).
enum HeadlessChromium {
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// CI installs it (scripts/setup --tests), so there a missing one fails rather than skips.
    static var mayBeMissing: Bool { ProcessInfo.processInfo.environment["CI"] != "true" }

    struct Page {
        var dom: String
        var console: [String]
    }

    static func open(_ file: String) throws -> Page {
        let browser = try #require(path, "chromium is not installed (scripts/setup --tests installs it)")
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-test-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let run = try EdgesimProcess.run(
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
                "--enable-logging=stderr", "--v=0", "--dump-dom", URL(fileURLWithPath: file).absoluteString,
            ], program: browser)
        #expect(run.status == 0, "\(run.errors.suffix(2000))")
        return Page(dom: run.output, console: run.errors.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init))
    }
}
