import Foundation
import Testing

/// `edgesim bench paths` on the small mesh made from the city table: real namespaces, real
/// links with the measured round trips, real probes and relays.
extension FleetRuns {
    @Suite struct PathBenchTests {
        @Test(.enabled(if: EdgesimProcess.isRoot, "bench paths measures paths between network namespaces, which needs root"))
        func smartRoutingChoosesTheFastestPathsAndMovesWhenALinkIsCut() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-paths-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let json = folder.appendingPathComponent("paths.json").path
            let svg = folder.appendingPathComponent("paths.svg").path
            let topology = EdgesimProcess.repository.appendingPathComponent("topologies/argo-lab.yaml").path
            let run = try EdgesimProcess.run(["bench", "paths", topology, "--settle", "4s", "--cuts", "2", "--json", json, "--svg", svg])
            #expect(run.status == 0, "\(run.output)\n\(run.errors.suffix(3000))")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            let pairs = report["pairs"] as? [[String: Any]] ?? []
            #expect(pairs.count == 5, "every edge to the one origin")
            for pair in pairs {
                let chosen = pair["chosen_ms"] as? Double ?? .infinity
                let best = pair["best_ms"] as? Double ?? 0
                let direct = pair["direct_ms"] as? Double ?? 0
                #expect(chosen <= direct + 1, "never worse than the internet's own path: \(pair)")
                #expect(pair["optimal"] as? Bool == true, "within max(1 ms, 2%) of the best: \(pair)")
                #expect(chosen <= best + max(1, best * 0.02))
                // Relaying adds little of its own: the echo round trip through the chosen path is
                // within 10% or 3 ms of the path's round trip (the entry link is nothing here).
                let measured = try #require(pair["measured_ms"] as? Double, "\(pair)")
                #expect(abs(measured - chosen) <= max(3, chosen * 0.1), "\(pair)")
            }
            // Chennai to Seoul: 332 ms straight, 136 ms through Tokyo (the city table).
            let chennai = try #require(pairs.first { $0["edge"] as? String == "maa" })
            #expect((chennai["chosen_path"] as? [String])?.count ?? 0 > 2, "relayed: \(chennai)")
            #expect(chennai["chosen_ms"] as? Double ?? .infinity < (chennai["direct_ms"] as? Double ?? 0) / 2)
            let summary = report["summary"] as? [String: Any] ?? [:]
            #expect(summary["optimal_fraction"] as? Double ?? 0 >= 0.95)
            let interval = summary["probe_interval_s"] as? Double ?? 0
            let reroutes = report["reroutes"] as? [[String: Any]] ?? []
            #expect(reroutes.count == 2, "\(run.output)")
            for reroute in reroutes {
                let seconds = try #require(reroute["seconds_to_move"] as? Double, "moved at all: \(reroute)")
                #expect(seconds <= 3 * interval, "within three probe intervals: \(reroute)")
                #expect(reroute["failed_after_move"] as? Int == 0, "\(reroute)")
            }
            let chart = try String(contentsOfFile: svg, encoding: .utf8)
            #expect(chart.hasPrefix("<svg") && chart.contains("maa → origin-icn"))
            #expect(run.output.contains("optimal: 5/5"), "\(run.output)")
            #expect(leftoverNamespaces().isEmpty)
        }
    }
}
