import Foundation
import Testing

/// Debian's chromium-driver: a W3C WebDriver session on a headless Chromium, driven over HTTP
/// (open a page, run a script in it, click, take a screenshot). `close` ends the session and
/// the driver, and removes the browser's profile.
final class WebDriver {
    static let driverPath = ["/usr/bin/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let driver: Process
    private let base: String
    private let session: String
    private let profile: URL

    init() async throws {
        let path = try #require(Self.driverPath, "chromedriver is not installed (scripts/setup --tests installs chromium-driver)")
        let browser = try #require(HeadlessChromium.path, "chromium is not installed")
        // Port 0: the driver takes a free port and says which; its output goes to a file read here.
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-test-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let log = profile.appendingPathComponent("chromedriver.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        driver = Process()
        driver.executableURL = URL(fileURLWithPath: path)
        driver.arguments = ["--port=0", "--allowed-ips=127.0.0.1"]
        driver.standardOutput = try FileHandle(forWritingTo: log)
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let deadline = ContinuousClock.now + .seconds(20)
        var port: String?
        while port == nil, driver.isRunning, ContinuousClock.now < deadline {
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            port = said.firstMatch(of: /started successfully on port (\d+)/).map { String($0.1) }
            if port == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard let port else {
            kill(driver.processIdentifier, SIGKILL)
            let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: profile)
            throw Failure(description: "chromedriver did not start: \(said)")
        }
        base = "http://127.0.0.1:\(port)"
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": browser,
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                            "--window-size=1500,1100", "--user-data-dir=\(profile.path)",
                        ],
                    ],
                ]
            ]
        ]
        let created = try await Self.call("POST", "\(base)/session", capabilities)
        guard let id = (created as? [String: Any])?["sessionId"] as? String else {
            kill(driver.processIdentifier, SIGKILL)
            throw Failure(description: "no session: \(created)")
        }
        session = "\(base)/session/\(id)"
    }

    func open(_ url: String) async throws {
        _ = try await Self.call("POST", "\(session)/url", ["url": url])
    }

    /// Runs a script in the page (its body: `return ...`); its result.
    func run(_ script: String) async throws -> Any? {
        try await Self.call("POST", "\(session)/execute/sync", ["script": script, "args": [Any]()])
    }

    /// Clicks the element; found again if the page replaced it in between.
    func click(_ selector: String) async throws {
        do {
            try await clickOnce(selector)
        } catch let failure as Failure where failure.description.contains("stale element") {
            try await clickOnce(selector)
        }
    }

    private func clickOnce(_ selector: String) async throws {
        let found = try await Self.call("POST", "\(session)/element", ["using": "css selector", "value": selector])
        guard let element = (found as? [String: Any])?.values.first as? String else {
            throw Failure(description: "no element \(selector)")
        }
        _ = try await Self.call("POST", "\(session)/element/\(element)/click", [String: Any]())
    }

    func screenshot() async throws -> Data {
        let text = try #require(try await Self.call("GET", "\(session)/screenshot") as? String)
        return try #require(Data(base64Encoded: text))
    }

    func close() async {
        _ = try? await Self.call("DELETE", session)
        // chromedriver does not end on SIGTERM; its browser went with the session.
        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
        try? FileManager.default.removeItem(at: profile)
    }

    /// One WebDriver command; its `value`.
    @discardableResult
    private static func call(_ method: String, _ url: String, _ body: Any? = nil) async throws -> Any? {
        // Through curl, an independent HTTP client the tests use anyway.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "--max-time", "30", "-X", method, "-H", "Content-Type: application/json", "--data-binary", "@-", url]
        let input = Pipe()
        let output = Pipe()
        curl.standardInput = input
        curl.standardOutput = output
        try curl.run()
        try input.fileHandleForWriting.write(contentsOf: try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data())
        try input.fileHandleForWriting.close()
        let data = try output.fileHandleForReading.readToEnd() ?? Data()
        curl.waitUntilExit()
        guard curl.terminationStatus == 0 else {
            throw Failure(description: "\(method) \(url): curl exited with \(curl.terminationStatus)")
        }
        let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any]
        let value = object?["value"]
        if let error = (value as? [String: Any])?["error"] as? String {
            throw Failure(description: "\(method) \(url): \(error): \((value as? [String: Any])?["message"] ?? "")")
        }
        return value
    }
}
