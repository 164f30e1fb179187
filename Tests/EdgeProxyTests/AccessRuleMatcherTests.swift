import EdgeModel
import EdgeProxy
import Testing

@Suite struct AccessRuleMatcherTests {
    func prefix(_ text: String) -> IPPrefix { try! IPPrefix.parse(text).get() }

    let table = [
        PrefixInfo(prefix: try! IPPrefix.parse("198.18.0.0/16").get(), country: "FR", asn: 64500),
        PrefixInfo(prefix: try! IPPrefix.parse("198.18.10.0/24").get(), country: "DE", asn: 64510),
        PrefixInfo(prefix: try! IPPrefix.parse("2001:db8:1::/48").get(), country: "FR", asn: 64520),
    ]

    @Test func blockedCIDRWithAnAllowedAddressInside() {
        let matcher = AccessRuleMatcher(
            rules: [
                AccessRule(action: .block, target: .prefix(prefix("198.18.10.0/24"))),
                AccessRule(action: .allow, target: .ip(IPAddress("198.18.10.7")!)),
            ], prefixes: [])
        #expect(!matcher.decide(IPAddress("198.18.10.8")!).allowed)
        #expect(matcher.decide(IPAddress("198.18.10.7")!).allowed)
        #expect(matcher.decide(IPAddress("198.18.11.1")!).allowed, "no rule matches: allowed")
        #expect(matcher.decide(IPAddress("198.18.11.1")!).rule == nil)
        #expect(!matcher.decide(IPAddress("::ffff:198.18.10.8")!).allowed, "IPv4-mapped IPv6 counts as IPv4")
        #expect(matcher.decide(IPAddress("::ffff:198.18.10.7")!).allowed)
    }

    @Test func longerPrefixBeatsShorter() {
        let matcher = AccessRuleMatcher(
            rules: [
                AccessRule(action: .allow, target: .prefix(prefix("198.18.0.0/16"))),
                AccessRule(action: .block, target: .prefix(prefix("198.18.10.0/24"))),
                AccessRule(action: .allow, target: .prefix(prefix("198.18.10.128/25"))),
            ], prefixes: [])
        #expect(matcher.decide(IPAddress("198.18.1.1")!).allowed)
        #expect(!matcher.decide(IPAddress("198.18.10.1")!).allowed)
        #expect(matcher.decide(IPAddress("198.18.10.200")!).allowed)
    }

    @Test func prefixBeatsASNWhichBeatsCountry() {
        let matcher = AccessRuleMatcher(
            rules: [
                AccessRule(action: .block, target: .country("FR")),
                AccessRule(action: .allow, target: .asn(64500)),
                AccessRule(action: .block, target: .prefix(prefix("198.18.5.0/24"))),
            ], prefixes: table)
        #expect(matcher.decide(IPAddress("198.18.1.1")!).allowed, "ASN allow beats country block")
        #expect(!matcher.decide(IPAddress("198.18.5.1")!).allowed, "prefix block beats ASN allow")
        #expect(!matcher.decide(IPAddress("2001:db8:1::5")!).allowed, "country block applies to IPv6 rows too")
        #expect(matcher.decide(IPAddress("198.18.10.1")!).allowed, "longest row says DE, AS64510: no rule")
        #expect(matcher.origin(of: IPAddress("198.18.10.1")!)?.asn == 64510)
    }

    @Test func atEqualSpecificityBlockWins() {
        for rules in [
            [AccessRule(action: .allow, target: .country("FR")), AccessRule(action: .block, target: .country("FR"))],
            [AccessRule(action: .block, target: .asn(64500)), AccessRule(action: .allow, target: .asn(64500))],
            [
                AccessRule(action: .allow, target: .ip(IPAddress("198.18.1.1")!)),
                AccessRule(action: .block, target: .ip(IPAddress("198.18.1.1")!)),
            ],
        ] {
            let decision = AccessRuleMatcher(rules: rules, prefixes: table).decide(IPAddress("198.18.1.1")!)
            #expect(!decision.allowed, "\(rules)")
            #expect(decision.rule?.action == .block)
        }
    }

    @Test func singleIPBeatsSlash32() {
        let matcher = AccessRuleMatcher(
            rules: [
                AccessRule(action: .block, target: .prefix(prefix("198.18.1.1/32"))),
                AccessRule(action: .allow, target: .ip(IPAddress("198.18.1.1")!)),
            ], prefixes: [])
        #expect(matcher.decide(IPAddress("198.18.1.1")!).allowed)
    }
}
