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
        return try EdgeRoutingTests.topology(text)
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
        #expect(path.hosts == ["c1", "e2", "e3", "o"])
        #expect(path.shape.latency == .milliseconds(21))
        #expect(abs(path.shape.loss - 0.01) < 1e-9)
        #expect(path.shape.bandwidth == 10_000_000)
        #expect(path.roundTrip == .milliseconds(42))
    }

    /// The internet does not route by delay: a pair's own link wins even when a detour through
    /// an edge is faster, and otherwise the fewest hops win, latency only breaking ties.
    @Test func pathsTakeTheOwnLinkThenTheFewestHopsNotTheFastest() throws {
        var table = PathTable(topology: try Self.topology())
        // c1-e2 is 9 ms direct, 8 ms through e1: the direct link is taken.
        #expect(try #require(table.path(from: "c1", to: "e2")).hosts == ["c1", "e2"])
        // Two hops to e3 both ways (via e1 is impossible in two); via e2 it is.
        #expect(try #require(table.path(from: "c1", to: "e3")).hosts == ["c1", "e2", "e3"])
        // Without c1's own link to e2, the two-hop path through e1 is what remains.
        table.cut("c1", "e2")
        #expect(try #require(table.path(from: "c1", to: "e2")).hosts == ["c1", "e1", "e2"])
        // Ties in hops go to the lower latency.
        table.reshape("c1", "e2", to: LinkShape(latency: .milliseconds(1)))
        #expect(try #require(table.path(from: "c1", to: "o")).shape.latency == .milliseconds(13))
    }

    /// An edge that does not announce is never a client's anycast choice, but its links still carry.
    @Test func edgesThatDoNotAnnounceAreSkippedByAnycast() throws {
        var topology = try Self.topology()
        topology.anycast.excludedNodes = ["e1"]
        var table = PathTable(topology: topology)
        #expect(table.nearestEdges(from: "c1").map(\.node) == ["e2"])
        table.cut("c1", "e2")
        #expect(table.nearestEdges(from: "c1").map(\.node) == ["e2"], "reached across e1, which does not hold the addresses")
        #expect(table.nearestEdges(from: "c1").first?.path.hosts == ["c1", "e1", "e2"])
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
