import EdgeModel
import EdgeRouting
import Foundation
import Testing

/// Paths and anycast choice on a small topology built in code.
@Suite struct PathTableTests {
    /// Two clients, three edges, one origin; c1 is nearest e1, then e2.
    static func topology() throws -> Topology {
        let text = """
            name: t
            edge_nodes: [{name: e1}, {name: e2}, {name: e3}]
            clients: [{name: c1}, {name: c2}]
            origins: [{name: o, kind: tcp-echo}]
            links:
              - {between: [c1, e1], latency: 5ms}
              - {between: [c1, e2], latency: 9ms, loss: 1%}
              - {between: [c2, e3], latency: 4ms}
              - {between: [e1, e2], latency: 3ms}
              - {between: [e2, e3], latency: 2ms}
              - {between: [e3, o], latency: 10ms, bandwidth: 10mbit}
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-paths-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ConfigLoader().loadTopology(path).value
    }

    @Test func theNearestLiveEdgeComesFirstAndPathsStopAtTheFirstEdge() throws {
        var table = PathTable(topology: try Self.topology())
        #expect(table.nearestEdges(from: "c1").map(\.node) == ["e1", "e2"])
        // c1 reaches e3 only through e1 or e2, which hold the address themselves.
        #expect(table.nearestEdges(from: "c2").map(\.node) == ["e3"])
        table.setDown("e1", true)
        #expect(table.nearestEdges(from: "c1").map(\.node) == ["e2"])
        table.setDown("e1", false)
        table.cut("c1", "e1")
        #expect(table.nearestEdges(from: "c1").first?.node == "e2")
    }

    @Test func pathsAddLatencyCompoundLossAndKeepTheNarrowestBandwidth() throws {
        let table = PathTable(topology: try Self.topology())
        let path = try #require(table.path(from: "c1", to: "o"))
        #expect(path.hosts == ["c1", "e1", "e2", "e3", "o"])
        #expect(path.shape.latency == .milliseconds(20))
        #expect(path.shape.bandwidth == 10_000_000)
        let lossy = try #require(table.path(from: "c1", to: "e2"))
        #expect(lossy.hosts == ["c1", "e1", "e2"])
        #expect(lossy.shape.loss == 0)
    }

    @Test func clientsAndOriginsNeverCarryOthersTraffic() throws {
        var table = PathTable(topology: try Self.topology())
        table.cut("e1", "e2")
        table.cut("e2", "e3")
        // The only way from c1 to c2 would pass through nothing but edges; none is left.
        #expect(table.path(from: "c1", to: "c2") == nil)
        #expect(table.path(from: "e1", to: "o") == nil)
    }

    @Test func reshapingALinkChangesThePathAndRestoringBringsItBack() throws {
        var table = PathTable(topology: try Self.topology())
        table.reshape("c1", "e1", to: LinkShape(latency: .milliseconds(50)))
        #expect(table.nearestEdges(from: "c1").first?.node == "e2")
        table.reshape("c1", "e1", to: nil)
        #expect(table.nearestEdges(from: "c1").first?.node == "e1")
    }
}
