import Foundation
import Testing

extension FleetRuns.UpCommandTests {
    /// Cloudflare's own Python SDK, pointed at `edgesim up --api` by its base URL, creates, lists,
    /// changes and deletes a Spectrum application; dig and a TCP client see each change.
    @Test(arguments: EdgesimProcess.modes)
    func cloudflaresPythonSDKManagesApplicationsOnARunningFleet(mode: String) throws {
        guard let dig = Self.tool("dig"), let socat = Self.tool("socat"),
            (try? tool(["/usr/bin/env", "python3", "-c", "import cloudflare; print('ok')"], in: nil)) == "ok\n"
        else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] != "true", "dig, socat and the cloudflare SDK come from scripts/setup --tests")
            print("skipped: dig, socat or Python's cloudflare package is missing (scripts/setup --tests installs them)")
            return
        }
        let (folder, apps) = try EdgesimProcess.scenario(Self.echoApps)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (up, output, watchdog) = try startUp(
            "world-21", apps: apps, mode: mode, folder: folder, ["--api", "127.0.0.1:0", "--api-token", "sdk-test-token"])
        defer { watchdog.cancel() }
        defer { kill(up.processIdentifier, SIGINT) }
        let api = "http://\(try apiAddress(of: up))"
        let script = EdgesimProcess.repository.appendingPathComponent("Tests/EdgeCLITests/SpectrumSDKClient.py").path

        func sdk(_ step: String, _ app: String? = nil) throws -> [String: Any] {
            let printed = try tool(
                ["/usr/bin/env", "python3", script, "\(api)/client/v4", "sdk-test-token", "up.example", step] + (app.map { [$0] } ?? []),
                in: nil)
            let object = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any]
            return try #require(object, "the SDK step \(step) printed '\(printed)'")
        }
        let namespace = mode == "netns" ? "edgesim-\(up.processIdentifier)-paris" : nil
        let server = mode == "netns" ? ["@198.18.255.53"] : ["@127.53.0.53", "-p", "5300"]
        func resolve(_ name: String) throws -> String {
            try tool([dig] + server + ["+short", "+time=2", "+tries=1", name, "A"], in: namespace)
                .split(separator: "\n").last.map(String.init) ?? ""
        }
        func echo(_ address: String, _ port: Int) throws -> String {
            try tool([socat, "-t", "3", "-", "TCP:\(address):\(port),connect-timeout=3"], in: namespace)
        }

        // A wrong token and an invalid body are refused the way Cloudflare's API refuses them.
        let refused = try sdk("bad-token")
        #expect(refused["status"] as? Int == 401)
        let invalid = try sdk("bad-body")
        #expect(invalid["status"] as? Int == 400)
        #expect("\(invalid["body"] ?? "")".contains("protocol"), "\(invalid)")

        let created = try sdk("create")
        let id = try #require(created["id"] as? String)
        #expect(id.count == 32)
        #expect(created["protocol"] as? String == "tcp/8001")
        let first = try resolve("sdk.up.example")
        #expect(first.hasPrefix(mode == "netns" ? "198.19." : "127.19."), "dig answered '\(first)'")
        #expect(try echo(first, 8001) == "hello through the edge\n")

        // per_page 1: the SDK pages through both applications.
        let listed = try #require(try sdk("list")["apps"] as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["id"] as? String }) == ["echo", id])

        let updated = try sdk("update", id)
        #expect(updated["protocol"] as? String == "tcp/8002")
        let second = try resolve("sdk.up.example")
        #expect(second != first && second.hasPrefix(mode == "netns" ? "198.19." : "127.19."), "dig answered '\(second)'")
        #expect(try echo(second, 8002) == "hello through the edge\n")

        #expect(try sdk("delete", id)["id"] as? String == id)
        let gone = try tool([dig] + server + ["+time=2", "+tries=1", "sdk.up.example", "A"], in: namespace)
        #expect(gone.contains("status: NXDOMAIN"), "\(gone)")
        #expect(try echo(second, 8002) == "", "nothing answers on the deleted application's address")
        let left = try #require(try sdk("list")["apps"] as? [[String: Any]])
        #expect(left.compactMap { $0["id"] as? String } == ["echo"])
        #expect(try echo(try resolve("echo.up.example"), 8000) == "hello through the edge\n")

        // Analytics count the deleted application's two connections (one before the change, one
        // after, 23 bytes from the client each) as they reach the fleet.
        var counted: [String: Any] = [:]
        let seen = EdgesimProcess.waitUntil(seconds: 10) {
            counted = (try? sdk("analytics")) ?? [:]
            let rows = counted["rows"] as? [[String: Any]] ?? []
            return rows.contains { ($0["dimensions"] as? [String]) == [id, "connect"] && ($0["metrics"] as? [Double]) == [2, 0] }
                && rows.contains { ($0["dimensions"] as? [String]) == [id, "disconnect"] && ($0["metrics"] as? [Double]) == [2, 46] }
        }
        #expect(seen, "\(counted)")
        let current = counted["current"] as? [[String: Any]] ?? []
        #expect(current.contains { $0["appID"] as? String == "echo" && $0["connections"] as? Double == 0 }, "\(current)")

        kill(up.processIdentifier, SIGINT)
        up.waitUntilExit()
        #expect(up.terminationReason == .exit && up.terminationStatus == 0)
        let printed = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
        #expect(printed.contains("application \(id) added: sdk.up.example tcp/8001"), "\(printed)")
        #expect(printed.contains("application \(id) deleted"), "\(printed)")
    }
}
