import EdgeModel
import EdgeSim
import Testing

/// A namespace's routes to the other hosts: one covering route for the link most of them are
/// reached over, a route of its own for every other destination.
@Suite struct NamespaceRoutesTests {
    let source = IPAddress("198.18.0.1")!

    @Test func theLinkMostDestinationsUseCoversTheRangeAndTheRestGetRoutesOfTheirOwn() {
        let routes = NamespaceNetwork.hostRoutes(
            source: source,
            to: [
                (IPAddress("198.18.0.2")!, "l3"), (IPAddress("198.18.0.3")!, "l3"), (IPAddress("198.18.0.4")!, "l3"),
                (IPAddress("198.18.0.5")!, "l9"), (IPAddress("198.18.0.6")!, nil), (IPAddress("203.0.113.7")!, "l3"),
            ], covering: NamespaceNetwork.coveringIPv4)
        #expect(routes["198.18.0.0/15"] == "route replace 198.18.0.0/15 dev l3 src 198.18.0.1")
        #expect(routes["198.18.0.5/32"] == "route replace 198.18.0.5/32 dev l9 src 198.18.0.1")
        #expect(routes["198.18.0.6/32"] == "route replace unreachable 198.18.0.6/32")
        // Outside the covering range, a destination gets its own route even over the common link.
        #expect(routes["203.0.113.7/32"] == "route replace 203.0.113.7/32 dev l3 src 198.18.0.1")
        #expect(routes.count == 4, "\(routes)")
    }

    @Test func whenMostDestinationsAreUnreachableTheRangeIsAndTheReachableGetRoutesOfTheirOwn() {
        let routes = NamespaceNetwork.hostRoutes(
            source: IPAddress("2001:db8:1::1")!,
            to: [
                (IPAddress("2001:db8:1::2")!, nil), (IPAddress("2001:db8:1::3")!, nil), (IPAddress("2001:db8:1::4")!, "l0"),
            ], covering: NamespaceNetwork.coveringIPv6)
        #expect(
            routes == [
                "2001:db8::/32": "route replace unreachable 2001:db8::/32",
                "2001:db8:1::4/128": "route replace 2001:db8:1::4/128 dev l0 src 2001:db8:1::1",
            ])
    }
}
