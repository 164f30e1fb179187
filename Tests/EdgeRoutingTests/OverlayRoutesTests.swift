import EdgeModel
import EdgeRouting
import Foundation
import Testing

/// Ground truth for path benchmarks: the fastest way through edge nodes.
@Suite struct OverlayRoutesTests {
    static func topology() throws -> Topology {
        let text = """
            name: t
            edge_nodes: [{name: a}, {name: b}, {name: c}]
            origins: [{name: o, kind: tcp-echo}]
            links:
              - {between: [a, b], rtt: 20ms}
              - {between: [b, c], rtt: 20ms}
              - {between: [a, c], rtt: 100ms}
              - {between: [a, o], rtt: 300ms}
              - {between: [b, o], rtt: 250ms}
              - {between: [c, o], rtt: 20ms}
            """
        return try EdgeRoutingTests.topology(text)
    }

    @Test func theBestOverlayPathUsesAsManyRelaysAsPay() throws {
        let table = PathTable(topology: try Self.topology())
        // Plain IP from a to o takes the own link: 300 ms.
        #expect(table.path(from: "a", to: "o")?.roundTrip == .milliseconds(300))
        let best = try #require(table.bestOverlayPath(from: "a", to: "o"))
        #expect(best.hops == ["a", "b", "c", "o"])
        #expect(best.roundTrip == .milliseconds(60))
        #expect(table.bestOverlayPath(from: "a", to: "o", maximumRelays: 1)?.hops == ["a", "c", "o"])
        #expect(table.bestOverlayPath(from: "a", to: "o", maximumRelays: 0)?.hops == ["a", "o"])
        #expect(table.roundTrip(through: ["a", "b", "c", "o"]) == .milliseconds(60))
    }

    @Test func aCutLinkChangesTheBestPath() throws {
        var table = PathTable(topology: try Self.topology())
        table.cut("b", "c")
        // b to c now crosses two hops (b-a-c or b-o... origins do not carry): b, a, c = 120 ms.
        #expect(table.roundTrip(through: ["b", "c"]) == .milliseconds(120))
        #expect(table.bestOverlayPath(from: "a", to: "o")?.hops == ["a", "c", "o"])
    }
}
