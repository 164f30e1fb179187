import EdgeDNS
import EdgeModel
import NIOCore
import NIOPosix
import Testing

@testable import EdgeProxy

/// The built-in mail origin: its SMTP conversation as a state machine, the checks MTAs make on
/// reverse DNS, the lookup against a real DNS server, and the whole origin behind a PROXY header.
@Suite struct MailOriginTests {
    typealias Machine = SMTPServerStateMachine
    static let client = IPAddress("198.18.7.7")!

    func replies(_ actions: [Machine.Action]) -> [String] {
        actions.compactMap { if case .reply(let text) = $0 { return text } else { return nil } }
    }

    func outcomes(_ actions: [Machine.Action]) -> [MailOutcome] {
        actions.compactMap { if case .outcome(let outcome) = $0 { return outcome } else { return nil } }
    }

    @Test func withoutChecksAMessageIsTakenInOrder() {
        var machine = Machine(hostname: "mx.test", policy: MailCheckPolicy(checks: []))
        #expect(machine.connected(client: Self.client, banner: "mx.test ESMTP") == [.reply("220 mx.test ESMTP")])
        #expect(replies(machine.line("MAIL FROM:<a@b.test>")) == ["503 5.5.1 send HELO or EHLO first"])
        #expect(replies(machine.line("EHLO sender.test")) == ["250-mx.test\r\n250-SIZE \(Machine.maxMessage)\r\n250 8BITMIME"])
        #expect(replies(machine.line("RCPT TO:<x@mx.test>")) == ["503 5.5.1 need MAIL before RCPT"])
        #expect(replies(machine.line("MAIL FROM:<a@b.test>")) == ["250 2.1.0 Ok"])
        #expect(replies(machine.line("DATA")) == ["503 5.5.1 need RCPT before DATA"])
        #expect(replies(machine.line("RCPT TO:<x@mx.test>")) == ["250 2.1.5 Ok"])
        #expect(replies(machine.line("DATA")) == ["354 End data with <CR><LF>.<CR><LF>"])
        #expect(machine.line("Subject: hi").isEmpty)
        #expect(machine.line("..a line that starts with a dot").isEmpty)
        let end = machine.line(".")
        #expect(replies(end).first?.hasPrefix("250 2.0.0 Ok: queued") == true)
        #expect(outcomes(end).map(\.accepted) == [true])
        #expect(outcomes(end).first?.client == Self.client)
        #expect(machine.line("QUIT") == [.reply("221 2.0.0 Bye"), .close])
        #expect(machine.line("NOOP").isEmpty)
    }

    @Test func aRecipientWaitsForTheLookupAndLinesAfterItAreHeld() {
        var machine = Machine(hostname: "mx.test", policy: MailCheckPolicy(checks: [.ptr, .helo, .fcrdns]))
        #expect(machine.connected(client: Self.client, banner: "b") == [.reply("220 b"), .lookUp(Self.client)])
        _ = machine.line("HELO sender.test")
        _ = machine.line("MAIL FROM:<a@sender.test>")
        // Pipelined: RCPT and DATA before the lookup answered; nothing is answered yet.
        #expect(machine.line("RCPT TO:<x@mx.test>").isEmpty)
        #expect(machine.line("DATA").isEmpty)
        let answered = machine.reverseLookupFinished(.found(names: ["Sender.test."], confirmed: true))
        #expect(replies(answered) == ["250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"])
    }

    @Test func anUnconfirmedNameIsRefusedAtRecipientAndCounted() {
        var machine = Machine(hostname: "mx.test", policy: MailCheckPolicy(checks: [.ptr, .fcrdns]))
        _ = machine.connected(client: Self.client, banner: "b")
        #expect(machine.reverseLookupFinished(.found(names: ["dsl-1.isp.test"], confirmed: false)).isEmpty)
        _ = machine.line("EHLO dsl-1.isp.test")
        _ = machine.line("MAIL FROM:<a@isp.test>")
        let refused = machine.line("RCPT TO:<x@mx.test>")
        #expect(replies(refused) == ["550 5.7.25 Client host rejected: dsl-1.isp.test does not resolve back to [198.18.7.7]"])
        #expect(outcomes(refused).map(\.refusedBy) == [.fcrdns])
        #expect(replies(machine.line("DATA")) == ["503 5.5.1 need RCPT before DATA"])
    }

    /// A client that pipelines without end while the lookup runs is cut off, so held lines
    /// cannot grow without bound.
    @Test func endlessPipeliningWhileTheLookupRunsIsCutOff() {
        var machine = Machine(hostname: "mx.test", policy: MailCheckPolicy(checks: [.ptr]))
        _ = machine.connected(client: Self.client, banner: "b")
        _ = machine.line("HELO sender.test")
        _ = machine.line("MAIL FROM:<a@sender.test>")
        #expect(machine.line("RCPT TO:<x@mx.test>").isEmpty)
        for _ in 0..<Machine.maxHeldLines { #expect(machine.line("NOOP").isEmpty) }
        #expect(machine.line("NOOP") == [.reply("421 4.7.0 mx.test too many commands before a reply"), .close])
        #expect(machine.reverseLookupFinished(.none).isEmpty, "nothing more once closed")
        #expect(machine.line("QUIT").isEmpty)
    }

    /// Lines are the same however the bytes arrive; a line over the limit is cut and marked.
    @Test func linesAreReadTheSameHoweverTheBytesArrive() {
        let bytes =
            Array("EHLO a.test\r\nMAIL FROM:<x@a.test>\nNOOP\r\n".utf8) + [UInt8](repeating: 0x41, count: 1500) + Array("\r\nQUIT".utf8)
        var whole = SMTPLineReader()
        let lines = whole.feed(bytes)
        #expect(lines.map(\.text.count) == [11, 20, 4, Machine.maxLine])
        #expect(lines.map(\.tooLong) == [false, false, false, true])
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            var split = SMTPLineReader()
            #expect(split.feed(bytes[..<cut]) + split.feed(bytes[cut...]) == lines)
        }
        #expect(whole.feed(Array("\n".utf8)).map(\.text) == ["QUIT"])
    }

    @Test func aLineTooLongEndsTheConnection() {
        var machine = Machine(hostname: "mx.test", policy: MailCheckPolicy(checks: []))
        _ = machine.connected(client: nil, banner: "b")
        #expect(machine.line("HELO x", tooLong: true) == [.reply("500 5.5.0 line too long"), .close])
        #expect(machine.line("HELO x").isEmpty)
    }

    @Test(
        arguments: [
            ([MailCheck.ptr], ReverseDNS.none, "helo.test", "550 5.7.25 Client host rejected: no PTR record for [198.18.7.7]"),
            ([.ptr], .found(names: ["x.test"], confirmed: false), "helo.test", nil),
            ([.fcrdns], .none, "helo.test", "550 5.7.25 Client host rejected: no PTR record for [198.18.7.7]"),
            ([.fcrdns], .found(names: ["x.test"], confirmed: true), "helo.test", nil),
            ([.helo], .found(names: ["x.test"], confirmed: true), "X.TEST.", nil),
            (
                [.helo], .found(names: ["x.test"], confirmed: true), "other.test",
                "550 5.7.1 <other.test>: Helo command rejected: not the name of [198.18.7.7] (its PTR name is x.test)"
            ),
            (
                [.ptr], .failed("timeout"), "helo.test",
                "450 4.7.25 Client host rejected: reverse lookup of [198.18.7.7] failed (timeout)"
            ),
            ([], .none, "anything", nil),
        ] as [([MailCheck], ReverseDNS, String, String?)])
    func checksRefuseAsMTAsDo(checks: [MailCheck], reverse: ReverseDNS, helo: String, reply: String?) {
        let refusal = MailCheckPolicy(checks: checks).refusal(client: Self.client, reverse: reverse, helo: helo)
        #expect(refusal?.reply == reply)
    }

    /// A zone with a confirmed name for one address, an unconfirmed one for another.
    func dnsServer() async throws -> (DNSServer, Endpoint) {
        var forward = Zone(apex: DNSName("mail.test")!, nameServers: [DNSName("ns.mail.test")!])
        forward.add(DNSRecord(name: DNSName("good.mail.test")!, ttl: 60, data: .a(Self.client)))
        var reverse = Zone(apex: DNSName("18.198.in-addr.arpa")!, nameServers: [DNSName("ns.mail.test")!])
        reverse.add(DNSRecord(name: .reverse(of: Self.client), ttl: 60, data: .ptr(DNSName("good.mail.test")!)))
        reverse.add(DNSRecord(name: .reverse(of: IPAddress("198.18.9.9")!), ttl: 60, data: .ptr(DNSName("liar.mail.test")!)))
        let server = DNSServer(zones: ZoneStore([forward, reverse]))
        let endpoint = try await server.start(at: Endpoint(Loopback.address(), 0))
        return (server, endpoint)
    }

    @Test func theLookupAsksARealDNSServer() async throws {
        let (server, endpoint) = try await dnsServer()
        defer { Task { await server.stop() } }
        let lookup = ReverseDNSLookup(client: DNSClient(server: endpoint))
        #expect(await lookup.lookUp(Self.client) == .found(names: ["good.mail.test"], confirmed: true))
        #expect(await lookup.lookUp(IPAddress("198.18.9.9")!) == .found(names: ["liar.mail.test"], confirmed: false))
        #expect(await lookup.lookUp(IPAddress("198.18.9.10")!) == .none)
        let silent = ReverseDNSLookup(client: DNSClient(server: Endpoint(Loopback.address(), 9), timeout: .milliseconds(200), attempts: 1))
        if case .failed = await silent.lookUp(Self.client) {} else { Issue.record("a server that never answers is a failed lookup") }
    }

    /// The whole origin behind PROXY v1: it greets after the header, checks the address the
    /// header names (not the peer's) and records the outcome.
    @Test func theOriginChecksTheAddressThePROXYHeaderNames() async throws {
        let (server, dns) = try await dnsServer()
        defer { Task { await server.stop() } }
        let settings = MailServerSettings(banner: "mx.test ESMTP", hostname: "mx.test", checks: [.ptr, .helo, .fcrdns], resolver: dns)
        let origin = TCPOrigin(expecting: .v1, responder: .smtp(settings))
        let address = Loopback.address()
        let bound = try await origin.start(address: address)
        defer { Task { await origin.stop() } }

        func converse(from client: String, helo: String) async throws -> [String] {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: bound[0].socketAddress) {
                channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
            return try await channel.executeThenClose { inbound, outbound in
                var chunks = inbound.makeAsyncIterator()
                var pending: [UInt8] = []
                try await outbound.write(ByteBuffer(string: "PROXY TCP4 \(client) \(address) 40000 25\r\n"))
                var said: [String] = []
                // The last line of the next whole reply (a space after the code ends a reply).
                func reply() async throws -> String {
                    while true {
                        while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            var line = pending[..<end]
                            pending.removeSubrange(...end)
                            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                            if line.count < 4 || line[line.startIndex + 3] == UInt8(ascii: " ") {
                                return String(decoding: line, as: UTF8.self)
                            }
                        }
                        guard let chunk = try await chunks.next() else { return "(closed)" }
                        pending += chunk.readableBytesView
                    }
                }
                said.append(try await reply())
                for command in ["EHLO \(helo)", "MAIL FROM:<a@\(helo)>", "RCPT TO:<x@mx.test>"] {
                    try await outbound.write(ByteBuffer(string: command + "\r\n"))
                    said.append(try await reply())
                }
                try await outbound.write(ByteBuffer(string: "QUIT\r\n"))
                return said
            }
        }
        let good = try await converse(from: "198.18.7.7", helo: "good.mail.test")
        #expect(good == ["220 mx.test ESMTP", "250 8BITMIME", "250 2.1.0 Ok", "250 2.1.5 Ok"])
        let liar = try await converse(from: "198.18.9.9", helo: "liar.mail.test")
        #expect(liar.last == "550 5.7.25 Client host rejected: liar.mail.test does not resolve back to [198.18.9.9]")
        let wrongName = try await converse(from: "198.18.7.7", helo: "someone.else.test")
        #expect(wrongName.last?.hasPrefix("550 5.7.1 <someone.else.test>: Helo command rejected") == true)
        #expect(origin.mailOutcomes.map(\.client) == [IPAddress("198.18.9.9")!, Self.client])
        #expect(origin.mailOutcomes.map(\.refusedBy) == [.fcrdns, .helo])

        // Everything at once, then the sender stops writing: every command is still answered.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: bound[0].socketAddress) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        let answered = try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(
                ByteBuffer(
                    string: "PROXY TCP4 198.18.7.7 \(address) 40000 25\r\nEHLO good.mail.test\r\nMAIL FROM:<a@good.mail.test>\r\n"
                        + "RCPT TO:<x@mx.test>\r\nQUIT\r\n"))
            outbound.finish()
            var text = ""
            for try await chunk in inbound { text += String(buffer: chunk) }
            return text
        }
        #expect(answered.hasSuffix("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n221 2.0.0 Bye\r\n"), "\(answered)")
    }
}
