import EdgeDNS
import EdgeModel
import EdgeSim
import Foundation
import Testing

/// The fleet's reverse DNS as the zones hold it: clients and origins have PTR records with a
/// forward record to match; edge nodes and application addresses answer NXDOMAIN.
@Suite struct ReverseDNSTests {
    static func plan() throws -> FleetPlan {
        let scenario = try ConfigLoader().loadScenario(ExpectationCheckerTests.repository + "/scenarios/lab-echo.yaml").value
        return try FleetPlan(scenario: scenario, mode: .netns)
    }

    func answer(_ name: String, _ type: DNSType, zones: [Zone]) -> DNSMessage {
        Answerer.answer(DNSMessage.query(id: 1, name: DNSName(name)!, type: type), zones: zones)
            ?? DNSMessage.query(id: 0, name: .root, type: type)
    }

    @Test func clientsAndOriginsHaveForwardConfirmedNamesEdgesAndAppsHaveNone() throws {
        let plan = try Self.plan()
        var zones = EdgeZones(pools: (plan.applicationPoolIPv4, plan.applicationPoolIPv6), hostPools: plan.hostPools)
        zones.hosts = plan.namedHosts(in: zones)
        let built = zones.build([], book: AddressBook(ipv4: plan.applicationPoolIPv4, ipv6: plan.applicationPoolIPv6))
        let paris = try #require(plan.hostAddresses["paris"])
        let reverse = DNSName.reverse(of: paris)
        #expect(reverse.description.hasSuffix("in-addr.arpa") || reverse.description.hasSuffix("in-addr.arpa."))
        let ptr = answer(reverse.description, .ptr, zones: built)
        #expect(ptr.answers.map(\.data) == [.ptr(DNSName("paris.hosts.edgesim.test")!)])
        let forward = answer("paris.hosts.edgesim.test", .a, zones: built)
        #expect(forward.answers.map(\.data) == [.a(paris)], "the PTR name points back to the same address")
        let parisV6 = try #require(plan.hostAddressesV6["paris"])
        #expect(answer(DNSName.reverse(of: parisV6).description, .ptr, zones: built).answers.count == 1)
        let origin = try #require(plan.hostAddresses["echo"])
        #expect(
            answer(DNSName.reverse(of: origin).description, .ptr, zones: built).answers.map(\.data) == [
                .ptr(DNSName("echo.hosts.edgesim.test")!)
            ])
        let edge = try #require(plan.hostAddresses["lhr"])
        let none = answer(DNSName.reverse(of: edge).description, .ptr, zones: built)
        #expect(none.responseCode == .nameError && none.answers.isEmpty, "edge nodes have no PTR")
        let app = answer(DNSName.reverse(of: IPAddress("198.19.0.7")!).description, .ptr, zones: built)
        #expect(app.responseCode == .nameError, "application addresses have no PTR")
    }

    @Test func aHostsOwnPTRNameIsServedWithItsForwardRecord() throws {
        let text = try String(contentsOfFile: ExpectationCheckerTests.repository + "/topologies/lab-3.yaml", encoding: .utf8)
            .replacingOccurrences(
                of: "  - name: madrid\n    city: Madrid", with: "  - name: madrid\n    city: Madrid\n    ptr: mail.madrid.example")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-ptr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try text.write(to: folder.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        try "name: s\ntopology: t.yaml\n".write(to: folder.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        let plan = try FleetPlan(
            scenario: try ConfigLoader().loadScenario(folder.appendingPathComponent("s.yaml").path).value, mode: .loopback)
        var zones = EdgeZones(pools: (plan.applicationPoolIPv4, plan.applicationPoolIPv6), hostPools: plan.hostPools)
        zones.hosts = plan.namedHosts(in: zones)
        let built = zones.build([], book: AddressBook(ipv4: plan.applicationPoolIPv4, ipv6: plan.applicationPoolIPv6))
        let madrid = try #require(plan.hostAddresses["madrid"])
        #expect(madrid.description.hasPrefix("127.18."), "loopback mode: the address this machine has")
        #expect(
            answer(DNSName.reverse(of: madrid).description, .ptr, zones: built).answers.map(\.data) == [
                .ptr(DNSName("mail.madrid.example")!)
            ])
        #expect(answer("mail.madrid.example", .a, zones: built).answers.map(\.data) == [.a(madrid)])
    }
}
