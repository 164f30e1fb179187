import EdgeDNS
import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import Testing

@testable import EdgeSim

/// What the mail scenarios rest on: an unconfirmed PTR has no forward record, the mail checks
/// count refusals from the sender's side, Postfix is configured from the topology and its log
/// read back, and leftovers of a killed run are found by name.
@Suite struct MailReportTests {
    static func plan(_ scenario: String = "mail-checks", mode: FleetPlan.Mode = .netns) throws -> FleetPlan {
        let scenario = try ConfigLoader().loadScenario(ExpectationCheckerTests.repository + "/scenarios/\(scenario).yaml").value
        return try FleetPlan(scenario: scenario, mode: mode)
    }

    @Test func anUnconfirmedPTRNameHasNoForwardRecord() throws {
        let plan = try Self.plan()
        var zones = EdgeZones(pools: (plan.applicationPoolIPv4, plan.applicationPoolIPv6), hostPools: plan.hostPools)
        zones.hosts = plan.namedHosts(in: zones)
        let built = zones.build([], book: AddressBook(ipv4: plan.applicationPoolIPv4, ipv6: plan.applicationPoolIPv6))
        func answer(_ name: DNSName, _ type: DNSType) -> DNSMessage? {
            Answerer.answer(DNSMessage.query(id: 1, name: name, type: type), zones: built)
        }
        let madrid = try #require(plan.hostAddresses["madrid-dsl"])
        let paris = try #require(plan.hostAddresses["paris-mta"])
        #expect(answer(.reverse(of: madrid), .ptr)?.answers.map(\.data) == [.ptr(DNSName("dsl-42.madrid.isp.example")!)])
        #expect(answer(DNSName("dsl-42.madrid.isp.example")!, .a)?.answers.isEmpty == true)
        #expect(answer(DNSName("mta.paris-mail.example")!, .a)?.answers.map(\.data) == [.a(paris)])
    }

    @Test func mailChecksCountRefusalsAndAcceptancesFromTheSendersSide() throws {
        var scenario = try ConfigLoader().loadScenario(ExpectationCheckerTests.repository + "/scenarios/mail-checks.yaml").value
        let scope = TrafficScope(application: "mail-v1", clients: ["madrid-dsl"])
        scenario.expectations = [
            .clientRejected(scope: scope, reason: "does not resolve back"), .clientRejected(scope: scope, reason: "no PTR"),
            .clientAccepted(scope: scope),
            .clientRejected(scope: TrafficScope(application: "mail-v2", clients: ["madrid-dsl"]), reason: nil),
        ]
        func result(_ refusal: String?) -> ConnectionResult {
            ConnectionResult(
                client: "madrid-dsl", app: "mail-v1", transport: "tcp", address: "198.19.0.2:25", ok: refusal == nil,
                error: refusal.map { "the origin refused the message: \($0)" }, started: 0, ended: 1, connectMs: 1, firstByteMs: 2,
                held: false, refusal: refusal)
        }
        let refusal = "550 5.7.25 Client host rejected: dsl-42.madrid.isp.example does not resolve back to [198.18.0.4]"
        var observed = Observations()
        observed.results = [result(refusal), result(refusal), result(nil)]
        let checks = ExpectationChecker(scenario: scenario, observed: observed).checks()
        #expect(checks.map(\.passed) == [false, false, false, false])
        #expect(checks[0].measured == "2 of 3 messages")
        #expect(checks[0].detail == "2× \(refusal); 1× accepted")
        #expect(checks[3].measured == "no traffic")
        observed.results.removeLast()
        #expect(ExpectationChecker(scenario: scenario, observed: observed).checks().map(\.passed) == [true, false, false, false])
    }

    @Test func postfixIsConfiguredFromTheTopology() throws {
        let plan = try Self.plan("mail-postfix")
        let topology = plan.scenario.topology
        let plain = PostfixOrigin(
            spec: try #require(topology.origin(named: "postfix-plain")), address: IPAddress("198.18.0.5")!, hostname: "mx1.example",
            wrap: { $0 })
        let main = plain.mainCF("/tmp/x")
        #expect(main.contains("smtpd_client_restrictions = reject_unknown_client_hostname\n"))
        #expect(main.contains("smtpd_upstream_proxy_protocol = \n"))
        #expect(main.contains("inet_interfaces = 198.18.0.5\n"))
        #expect(main.contains("maillog_file = /tmp/x/maillog\n"))
        #expect(plain.masterCF().hasPrefix("198.18.0.5:25 inet n - n - - smtpd\n"))
        var spec = try #require(topology.origin(named: "postfix-proxy"))
        spec.checks = [.ptr, .helo]
        spec.ports = [try #require(PortRange(first: 25, last: 26))]
        let proxy = PostfixOrigin(spec: spec, address: IPAddress("198.18.0.6")!, hostname: "mx2.example", wrap: { $0 })
        #expect(proxy.mainCF("/tmp/y").contains("smtpd_upstream_proxy_protocol = haproxy\n"))
        #expect(proxy.mainCF("/tmp/y").contains("smtpd_client_restrictions = reject_unknown_reverse_client_hostname\n"))
        #expect(proxy.mainCF("/tmp/y").contains("smtpd_helo_restrictions = reject_unknown_helo_hostname\n"))
        #expect(proxy.masterCF().contains("198.18.0.6:26 inet n - n - - smtpd\n"))
    }

    @Test func postfixsLogIsReadBack() {
        let lines = [
            "Nov 30 14:36:17 mx1 postfix/master[4036]: daemon started -- version 3.7.11, configuration /tmp/f",
            "Nov 30 14:36:20 mx1 postfix/smtpd[4101]: connect from unknown[198.18.0.1]",
            "Nov 30 14:36:20 mx1 postfix/smtpd[4101]: NOQUEUE: reject: RCPT from unknown[198.18.0.1]: 450 4.7.25 Client host rejected: cannot find your hostname, [198.18.0.1]; from=<edgesim@mta.paris-mail.example> to=<postmaster@plain.postfix.example> proto=ESMTP helo=<mta.paris-mail.example>",
            "Nov 30 14:36:20 mx1 postfix/smtpd[4101]: disconnect from unknown[198.18.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4",
            "Nov 30 14:36:21 mx2 postfix/smtpd[4102]: connect from mta.paris-mail.example[198.18.0.3]",
            "Nov 30 14:36:21 mx2 postfix/smtpd[4102]: 4F1A2B3C: client=mta.paris-mail.example[198.18.0.3]",
            "Nov 30 14:36:21 mx2 postfix/cleanup[4103]: 4F1A2B3C: message-id=<>",
            "a line that is not Postfix's [198.18.9.9]",
        ]
        let log = PostfixLog(lines: lines)
        #expect(log.connections == [IPAddress("198.18.0.1")!, IPAddress("198.18.0.3")!])
        #expect(log.outcomes.map(\.client) == [IPAddress("198.18.0.1")!, IPAddress("198.18.0.3")!])
        #expect(log.outcomes.map(\.accepted) == [false, true])
        #expect(log.outcomes[0].reply == "450 4.7.25 Client host rejected: cannot find your hostname, [198.18.0.1]")
        #expect(log.outcomes[0].refusedBy == .fcrdns)
        #expect(log.outcomes[0].helo == "mta.paris-mail.example")
    }

    @Test func leftoversOfAKilledRunAreFoundByTheirRunnersPID() throws {
        #expect(Leftovers.runnerPID("edgesim-postfix-4242-mx-1", prefix: PostfixOrigin.folderPrefix) == 4242)
        #expect(Leftovers.runnerPID("edgesim-up-77", prefix: "edgesim-up-") == 77)
        #expect(Leftovers.runnerPID("edgesim-postfix-x", prefix: PostfixOrigin.folderPrefix) == nil)
        // A resolver folder of a namespace whose runner is gone (a pid that cannot be running).
        let orphan = NetworkNamespace("edgesim-\(Int32.max - 7)-paris")
        #expect(Leftovers.isOrphaned(orphan.name))
        #expect(!Leftovers.isOrphaned("edgesim-\(getpid())-paris"))
        // The tests' own namespaces, when a test process was killed.
        #expect(Leftovers.isOrphaned("edgesim-test\(Int32.max - 7)-1234-a"))
        #expect(!Leftovers.isOrphaned("edgesim-test\(getpid())-1234-a"))
        guard getuid() == 0 else { return }
        try orphan.setResolver(IPAddress("198.18.255.53")!)
        defer { orphan.removeResolver() }
        #expect(try String(contentsOfFile: orphan.etcFolder + "/resolv.conf", encoding: .utf8).hasPrefix("nameserver 198.18.255.53\n"))
        #expect(Leftovers.findEtcFolders().contains(orphan.etcFolder))
        let removed = Leftovers.clean()
        #expect(removed.contains { $0.command == "resolver folder \(orphan.etcFolder)" })
        #expect(!FileManager.default.fileExists(atPath: orphan.etcFolder))
    }
}
