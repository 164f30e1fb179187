import EdgeModel
import EdgeSim
import Foundation
import Testing

/// Where a scenario's hosts and applications live in each mode.
@Suite struct FleetPlanTests {
    static func scenario(_ name: String) throws -> Scenario {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try ConfigLoader().loadScenario(repository.appendingPathComponent("scenarios/\(name).yaml").path).value
    }

    @Test func loopbackModeMovesSimulatedAddressesInto127AndKeepsThemDistinct() throws {
        let plan = try FleetPlan(scenario: Self.scenario("smtp-client-address"), mode: .loopback)
        #expect(plan.hostAddresses["sender-toronto"] == IPAddress("127.18.30.5"))
        #expect(plan.hostAddresses["sender-miami"] == IPAddress("127.18.40.5"))
        #expect(Set(plan.hostAddresses.values).count == plan.hostAddresses.count)
        let local = try IPPrefix.parse("127.18.0.0/15").get()
        #expect(plan.hostAddresses.values.allSatisfy(local.contains))
        // The access rule naming a client's own address follows it.
        #expect(plan.accessRules.contains { $0.target == .ip(IPAddress("127.18.40.5")!) })
        #expect(plan.prefixes.contains { $0.asn == 64540 && $0.prefix.contains(IPAddress("127.18.40.5")!) })
        #expect(plan.simulated(IPAddress("127.18.40.5")!) == IPAddress("198.18.40.5"))
    }

    @Test func eachNodeHasItsOwnCopyOfAnApplicationAddressInLoopbackMode() throws {
        let plan = try FleetPlan(scenario: Self.scenario("lab-echo"), mode: .loopback)
        let published = IPAddress("127.19.0.7")!
        let copies = plan.edgeNodes.map { plan.nodeAddress(of: published, on: $0) }
        #expect(Set(copies).count == plan.edgeNodes.count)
        for (node, copy) in zip(plan.edgeNodes, copies) {
            let back = try #require(plan.published(copy))
            #expect(back.node == node)
            #expect(back.address == published)
        }
    }

    @Test func netnsModeKeepsSimulatedAddressesAndAddsIPv6() throws {
        let plan = try FleetPlan(scenario: Self.scenario("lab-echo"), mode: .netns)
        #expect(plan.hostAddresses["paris"] == IPAddress("198.18.10.1"))
        #expect(plan.hostAddressesV6["paris"] == IPAddress("2001:db8:1:10::1"))
        #expect(plan.hostAddressesV6.count == plan.hostAddresses.count)
        #expect(plan.nodeAddress(of: IPAddress("198.19.0.1")!, on: "ams") == IPAddress("198.19.0.1"))
        // Topology origins become their host's address in what the nodes serve.
        let echo = try #require(plan.applications.first { $0.id == "echo-tcp" })
        guard case .direct(let origins) = echo.origin else {
            Issue.record("echo-tcp has direct origins")
            return
        }
        #expect(origins.first?.host == .ip(plan.hostAddresses["echo"]!))
        #expect(echo.edgeIPs == .dynamic(.all))
    }

    @Test func loopbackModeServesIPv4Only() throws {
        let plan = try FleetPlan(scenario: Self.scenario("lab-echo"), mode: .loopback)
        #expect(plan.applications.allSatisfy { $0.edgeIPs == .dynamic(.ipv4) })
    }
}

/// What `edgesim clean` finds of commands that died: their scratch folders, not those of
/// commands still running.
@Suite struct LeftoverFolderTests {
    @Test func scratchFoldersOfDeadCommandsAreFoundAndLiveOnesKept() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let temporary = FileManager.default.temporaryDirectory
        let dead = temporary.appendingPathComponent("edgesim-bench-paths-\(finished.processIdentifier)")
        let alive = temporary.appendingPathComponent("edgesim-up-\(getpid())")
        for folder in [dead, alive] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        defer { for folder in [dead, alive] { try? FileManager.default.removeItem(at: folder) } }
        let found = Leftovers.findFolders()
        #expect(found.contains(dead.path))
        #expect(!found.contains(alive.path), "this test process is still running")
    }
}
