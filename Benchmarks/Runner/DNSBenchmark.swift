import Foundation

/// The responder against NSD serving the same zone, both driven by dnsperf in the same run.
enum DNSBenchmark {
    struct Result {
        var edgesim: Double
        var nsd: Double
    }

    static func run(edgesim binary: String, folder: URL, names: Int, seconds: Int) async throws -> Result? {
        guard let nsd = PeerLauncher.find("nsd"), let dnsperf = PeerLauncher.find("dnsperf") else {
            say("nsd or dnsperf not installed (scripts/setup --benchmarks installs them): DNS benchmark skipped")
            return nil
        }
        // The same records for both: NAME A 198.19.x.y, as ADDRESS applications with static addresses.
        var apps = ""
        var zone =
            "$ORIGIN bench.example.\n$TTL 30\n@ 300 IN SOA ns1.edgesim.test. hostmaster.bench.example. 1 3600 600 86400 30\n@ 300 IN NS ns1.edgesim.test.\n"
        var queries = ""
        for index in 0..<names {
            let address = "198.19.\(index / 250).\(index % 250 + 1)"
            apps +=
                "- {id: app\(index), protocol: tcp/80, dns: {type: ADDRESS, name: app\(index).bench.example}, origin_direct: [\"tcp://198.18.0.1:80\"], edge_ips: {type: static, ips: [\(address)]}}\n"
            zone += "app\(index) IN A \(address)\n"
            queries += "app\(index).bench.example A\n"
        }
        let appsFile = folder.appendingPathComponent("dns-apps.yaml")
        let zoneFile = folder.appendingPathComponent("bench.example.zone")
        let queryFile = folder.appendingPathComponent("queries.txt")
        try apps.write(to: appsFile, atomically: true, encoding: .utf8)
        try zone.write(to: zoneFile, atomically: true, encoding: .utf8)
        try queries.write(to: queryFile, atomically: true, encoding: .utf8)
        let nsdConfig = """
            server:
              ip-address: 127.0.0.6@5300
              username: ""
              zonesdir: "\(folder.path)"
              pidfile: "\(folder.path)/nsd.pid"
              database: ""
              zonelistfile: "\(folder.path)/zone.list"
              xfrdfile: "\(folder.path)/xfrd.state"
              server-count: 2
              reuseport: yes
              verbosity: 0
            remote-control:
              control-enable: no
            zone:
              name: bench.example
              zonefile: bench.example.zone

            """
        let nsdConfigFile = folder.appendingPathComponent("nsd.conf")
        try nsdConfig.write(to: nsdConfigFile, atomically: true, encoding: .utf8)

        let edgesimDNS = try PeerLauncher.run(
            binary, ["dns", "--apps", appsFile.path, "--listen", "127.0.0.5:5300", "--pool-ipv4", "198.19.0.0/16", "--rate-limit", "0"])
        let nsdProcess = try PeerLauncher.run(nsd, ["-d", "-c", nsdConfigFile.path])
        defer { PeerLauncher.stop([edgesimDNS, nsdProcess]) }
        try await PeerLauncher.ready([edgesimDNS, nsdProcess]) {
            try await PeerLauncher.waitForListener("127.0.0.5", 5300)
            try await PeerLauncher.waitForListener("127.0.0.6", 5300)
        }
        let mine = try measure(dnsperf, server: "127.0.0.5", queries: queryFile, seconds: seconds)
        let theirs = try measure(dnsperf, server: "127.0.0.6", queries: queryFile, seconds: seconds)
        return Result(edgesim: mine, nsd: theirs)
    }

    /// dnsperf for a fixed time with 4 clients and up to 100 queries in flight; queries per second.
    static func measure(_ dnsperf: String, server: String, queries: URL, seconds: Int) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dnsperf)
        process.arguments = ["-s", server, "-p", "5300", "-d", queries.path, "-l", "\(seconds)", "-c", "4", "-q", "100", "-T", "2"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: (try? pipe.fileHandleForReading.readAll()) ?? Data(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Queries per second:") }),
            let value = Double(line.split(separator: " ").last ?? "")
        else { throw BenchError("dnsperf against \(server) gave no rate:\n\(output)") }
        return value
    }
}
