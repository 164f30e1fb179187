import Foundation
import Testing

extension FleetRuns.UpCommandTests {
    /// The live dashboard of `edgesim up --api`, in headless Chromium driven by chromedriver:
    /// every edge node is on the map, a node stopped through the API shows as stopped within
    /// 2 s, the page's own start button brings it back, and nothing goes wrong in the page.
    @Test(arguments: EdgesimProcess.modes)
    func theDashboardShowsEveryNodeAndFollowsTheFleetLive(mode: String) async throws {
        guard WebDriver.driverPath != nil, HeadlessChromium.path != nil, let curl = Self.tool("curl") else {
            try #require(HeadlessChromium.mayBeMissing, "chromium, chromium-driver and curl come from scripts/setup --tests")
            print("skipped: chromium, chromium-driver or curl is missing (scripts/setup --tests installs them)")
            return
        }
        let (folder, apps) = try EdgesimProcess.scenario(Self.echoApps)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (up, _, watchdog) = try startUp(
            "world-21", apps: apps, mode: mode, folder: folder, ["--api", "127.0.0.1:0", "--api-token", "dashboard-token"])
        defer { watchdog.cancel() }
        defer { kill(up.processIdentifier, SIGINT) }
        let api = try apiAddress(of: up)

        let browser = try await WebDriver()
        do {
            try await browser.open("http://\(api)/#token=dashboard-token")
            func states() async throws -> [String: String] {
                let found = try await browser.run(
                    "return Array.from(document.querySelectorAll('circle[data-node]')).map(c => c.dataset.node + '=' + c.dataset.state)")
                return Dictionary(
                    ((found as? [String]) ?? []).map { entry in
                        let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                        return (parts[0], parts.count > 1 ? parts[1] : "")
                    }, uniquingKeysWith: { first, _ in first })
            }
            func waitFor(_ limit: Duration, _ condition: ([String: String]) -> Bool) async throws -> Bool {
                let deadline = ContinuousClock.now + limit
                while ContinuousClock.now < deadline {
                    if condition(try await states()) { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return condition(try await states())
            }
            let shown = try await waitFor(.seconds(10)) { $0.count == 21 && $0.values.allSatisfy { $0 == "up" } }
            let first = try await states()
            #expect(shown, "the map shows \(first)")
            let live = try await browser.run("return document.getElementById('live').dataset.live") as? String
            #expect(live == "yes")

            let stopped = try tool(
                [curl, "-s", "-X", "POST", "-H", "Authorization: Bearer dashboard-token", "http://\(api)/edgesim/v1/nodes/ams/stop"],
                in: nil)
            #expect(stopped.contains(#""success":true"#), "\(stopped)")
            let asked = ContinuousClock.now
            let seen = try await waitFor(.seconds(2)) { $0["ams"] == "stopped" }
            let after = try await states()["ams"] ?? "nothing"
            #expect(seen, "2 s after the API stopped ams the map shows \(after)")
            #expect(ContinuousClock.now - asked <= .seconds(2))
            // docs/dashboard.png is taken here: EDGESIM_DASHBOARD_SCREENSHOT=docs/dashboard.png.
            if let keep = ProcessInfo.processInfo.environment["EDGESIM_DASHBOARD_SCREENSHOT"], mode == EdgesimProcess.modes.last {
                try await browser.screenshot().write(to: URL(fileURLWithPath: keep))
            }

            // The page's own button calls the API.
            try await browser.click("tr[data-node-row='ams'] button[data-action='/edgesim/v1/nodes/ams/start']")
            let back = try await waitFor(.seconds(10)) { $0["ams"] == "up" }
            #expect(back, "the start button brought ams back")
            let timeline = try await browser.run("return document.getElementById('timeline').textContent") as? String ?? ""
            #expect(timeline.contains("node ams stopped") && timeline.contains("node ams started"), "\(timeline)")
            let errors = try await browser.run("return window.dashboardErrors") as? [String]
            #expect(errors == [], "the page reported errors")
        } catch {
            await browser.close()
            throw error
        }
        await browser.close()
    }
}
