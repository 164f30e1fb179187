import Foundation
import Testing

extension FleetRuns.UpCommandTests {
    /// A real Prometheus server scrapes `/metrics` of `edgesim up --api` with the fleet's bearer
    /// token; a PromQL query gives the number of connections made through the fleet, and
    /// Prometheus's own linter accepts what the endpoint writes.
    @Test(arguments: EdgesimProcess.modes)
    func prometheusScrapesTheFleetAndCountsItsConnections(mode: String) throws {
        guard let dig = Self.tool("dig"), let socat = Self.tool("socat"), let curl = Self.tool("curl"),
            let prometheus = Self.tool("prometheus"), let promtool = Self.tool("promtool")
        else {
            try #require(ProcessInfo.processInfo.environment["CI"] != "true", "prometheus and the tools come from scripts/setup --tests")
            print("skipped: prometheus, promtool, dig, socat or curl is missing (scripts/setup --tests installs them)")
            return
        }
        let (folder, apps) = try EdgesimProcess.scenario(Self.echoApps)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (up, _, watchdog) = try startUp(
            "world-21", apps: apps, mode: mode, folder: folder, ["--api", "127.0.0.1:0", "--api-token", "scrape-token"])
        defer { watchdog.cancel() }
        defer { kill(up.processIdentifier, SIGINT) }
        let api = try apiAddress(of: up)

        let namespace = mode == "netns" ? "edgesim-\(up.processIdentifier)-paris" : nil
        let server = mode == "netns" ? ["@198.18.255.53"] : ["@127.53.0.53", "-p", "5300"]
        let address =
            try tool([dig] + server + ["+short", "+time=2", "+tries=1", "echo.up.example", "A"], in: namespace)
            .split(separator: "\n").last.map(String.init) ?? ""
        let connections = 3
        for _ in 0..<connections {
            #expect(try tool([socat, "-t", "3", "-", "TCP:\(address):8000"], in: namespace) == "hello through the edge\n")
        }

        // Without the token, nothing; with it, text Prometheus's linter accepts.
        let refused = try tool([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(api)/metrics"], in: nil)
        #expect(refused == "401")
        let text = folder.appendingPathComponent("metrics.txt").path
        _ = try tool([curl, "-s", "-H", "Authorization: Bearer scrape-token", "-o", text, "http://\(api)/metrics"], in: nil)
        let lint = try tool(["/bin/sh", "-c", "\(promtool) check metrics < \(text) 2>&1; echo status=$?"], in: nil)
        #expect(lint.hasSuffix("status=0\n"), "\(lint)")

        // Prometheus on a port of its own, scraping every second.
        let port = try Self.freePort()
        let config = folder.appendingPathComponent("prometheus.yml").path
        try """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        scrape_configs:
          - job_name: edgesim
            authorization: {credentials: scrape-token}
            static_configs: [{targets: ["\(api)"]}]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let server_ = Process()
        server_.executableURL = URL(fileURLWithPath: prometheus)
        server_.arguments = [
            "--config.file=\(config)", "--storage.tsdb.path=\(folder.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)",
        ]
        server_.standardOutput = FileHandle.nullDevice
        server_.standardError = FileHandle.nullDevice
        try server_.run()
        defer {
            server_.terminate()
            server_.waitUntilExit()
        }
        func query(_ promql: String) -> String {
            (try? tool(
                [curl, "-s", "--max-time", "2", "-G", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode", "query=\(promql)"],
                in: nil))
                ?? ""
        }
        var answer = ""
        let counted = EdgesimProcess.waitUntil(seconds: 30) {
            answer = query(#"sum(edgesim_connection_events_total{app="echo",event="connect"})"#)
            return answer.contains(#""value":["#) && answer.hasSuffix(#","\#(connections)"]}]}}"#)
        }
        #expect(counted, "Prometheus answered \(answer)")
        let up_ = query(#"count(edgesim_node_up == 1)"#)
        #expect(up_.hasSuffix(#","21"]}]}}"#), "every node of world-21 is up: \(up_)")
        let dns = query(#"sum(edgesim_dns_answers_total{type="A",rcode="NOERROR"}) >= 1"#)
        #expect(dns.contains(#""value":["#), "\(dns)")
    }

    /// A TCP port nothing listens on now.
    static func freePort() throws -> UInt16 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        try #require(bound)
        return UInt16(bigEndian: address.sin_port)
    }
}
