import Testing

@testable import EdgeModel

@Suite struct ValueTests {
    @Test func ipAddressesParseAndPrint() {
        #expect(IPAddress("198.18.0.1") == .v4(0xC612_0001))
        #expect(IPAddress("198.18.0.1")?.description == "198.18.0.1")
        #expect(IPAddress("2001:DB8::1")?.description == "2001:db8::1")
        #expect(IPAddress("2001:db8::1")?.bracketed == "[2001:db8::1]")
        #expect(IPAddress("::ffff:198.18.0.1")?.unmapped == IPAddress("198.18.0.1"))
        #expect(IPAddress("198.18.0.1")?.bytes == [198, 18, 0, 1])
        for bad in ["198.18.0", "198.18.0.256", "01.2.3.4", "1.2.3.4.5", "2001:db8:::1", "[::1]", "", "host"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func prefixesContainAndRejectHostBits() throws {
        let prefix = try IPPrefix.parse("198.18.10.0/24").get()
        #expect(prefix.contains(IPAddress("198.18.10.200")!))
        #expect(!prefix.contains(IPAddress("198.18.11.1")!))
        #expect(prefix.contains(IPAddress("::ffff:198.18.10.7")!), "IPv4-mapped IPv6 counts as IPv4")
        #expect(!prefix.contains(IPAddress("2001:db8::1")!))
        #expect(try IPPrefix.parse("2001:db8::/32").get().contains(IPAddress("2001:db8:ffff::1")!))
        #expect(IPPrefix.parse("198.18.10.1/24").failureMessage == "'198.18.10.1/24' has host bits set; did you mean 198.18.10.0/24?")
        #expect(IPPrefix.parse("198.18.0.0/33").failureMessage?.contains("outside 0-32") == true)
        #expect(try IPPrefix.parse("198.18.0.7").get().length == 32)
        #expect(try IPPrefix.parse("0.0.0.0/0").get().contains(IPAddress("8.8.8.8")!))
    }

    @Test func portRangesMapByOffset() throws {
        let edge = try PortRange.parse("1000-2000").get()
        let origin = try PortRange.parse("3000-4000").get()
        #expect(edge.map(1005, onto: origin) == 3005)
        #expect(edge.map(2000, onto: origin) == 4000)
        #expect(edge.map(999, onto: origin) == nil)
        #expect(edge.map(1500, onto: PortRange(port: 22)) == 22)
        #expect(edge.count == 1001)
        #expect(PortRange.parse("0").failureMessage == "ports must be 1-65535, got '0'")
        #expect(PortRange.parse("65536").failureMessage == "ports must be 1-65535, got '65536'")
        #expect(PortRange.parse("20-10").failureMessage == "range '20-10' starts above its end")
        #expect(PortRange.parse("a-b").failureMessage?.contains("not a port") == true)
    }

    @Test func quantitiesReadTheirUnits() throws {
        #expect(try Quantity.duration("250ms").get() == .milliseconds(250))
        #expect(try Quantity.duration("1m30s").get() == .seconds(90))
        #expect(try Quantity.duration("1.5s").get() == .milliseconds(1500))
        #expect(Quantity.duration("30").failureMessage?.contains("needs a unit") == true)
        #expect(Quantity.duration("3 weeks").failureMessage != nil)
        #expect(try Quantity.bitRate("100mbit").get() == 100_000_000)
        #expect(try Quantity.bitRate("1Gbps").get() == 1_000_000_000)
        #expect(try Quantity.byteCount("16KiB").get() == 16384)
        #expect(try Quantity.byteCount("512").get() == 512)
        #expect(try Quantity.percentage("0.5%").get() == 0.005)
        #expect(Quantity.percentage("0.5").failureMessage?.contains("not a percentage") == true)
        #expect(Quantity.percentage("150%").failureMessage?.contains("outside") == true)
        #expect(try Quantity.rate("300/m").get() == 5)
        #expect(Duration.milliseconds(1500).formatted == "1.5s")
        #expect(Duration.milliseconds(250).formatted == "250ms")
    }

    @Test func hostNamesAreNormalizedAndChecked() throws {
        #expect(try HostName.normalize("Mail.Example.NET.").get() == "mail.example.net")
        #expect(try HostName.normalize("_smtp._tcp.example.net").get() == "_smtp._tcp.example.net")
        #expect(HostName.normalize("-bad.example").failureMessage != nil)
        #expect(HostName.normalize("a..b").failureMessage != nil)
        #expect(HostName.normalize(String(repeating: "a", count: 64) + ".example").failureMessage != nil)
        #expect(HostName.normalize(Array(repeating: "abcdefgh", count: 40).joined(separator: ".")).failureMessage?.contains("253") == true)
    }
}

extension Result where Failure == ValueError {
    var failureMessage: String? {
        if case .failure(let error) = self { return error.message }
        return nil
    }
}
