import EdgeDNS
import EdgeModel
import Testing

@Suite struct AnswererTests {
    static let apex = DNSName("edge.example")!

    static func zone() -> Zone {
        var zone = Zone(apex: apex, nameServers: [DNSName("ns1.edge.example")!], ttl: 300, negativeTTL: 30)
        zone.add(DNSRecord(name: DNSName("ns1.edge.example")!, ttl: 300, data: .a(IPAddress("198.19.255.1")!)))
        zone.add(DNSRecord(name: DNSName("app.edge.example")!, ttl: 30, data: .cname(DNSName("a1.apps.edge.example")!)))
        zone.add(DNSRecord(name: DNSName("a1.apps.edge.example")!, ttl: 30, data: .a(IPAddress("198.19.0.1")!)))
        zone.add(DNSRecord(name: DNSName("a1.apps.edge.example")!, ttl: 30, data: .aaaa(IPAddress("2001:db8:a::1")!)))
        zone.add(DNSRecord(name: DNSName("v4only.edge.example")!, ttl: 30, data: .a(IPAddress("198.19.0.2")!)))
        return zone
    }

    func ask(_ name: String, _ type: DNSType) -> DNSMessage {
        Answerer.answer(DNSMessage.query(id: 9, name: DNSName(name)!, type: type), zones: [Self.zone()])!
    }

    @Test func cnameIsFollowedToTheAddresses() {
        let reply = ask("APP.edge.example", .a)
        #expect(reply.authoritative && reply.isResponse && reply.responseCode == .noError)
        #expect(reply.answers.map(\.data) == [.cname(DNSName("a1.apps.edge.example")!), .a(IPAddress("198.19.0.1")!)])
        #expect(reply.edns?.udpPayloadSize == Answerer.udpPayloadSize, "an EDNS query gets an OPT back")
    }

    @Test func nodataAndNxdomainCarryTheSOA() {
        let nodata = ask("v4only.edge.example", .aaaa)
        #expect(nodata.responseCode == .noError && nodata.answers.isEmpty)
        #expect(nodata.authorities.first?.type == .soa)
        #expect(nodata.authorities.first?.ttl == 30, "negative answers use the SOA minimum")
        let interior = ask("apps.edge.example", .a)
        #expect(interior.responseCode == .noError, "an empty non-terminal exists")
        let missing = ask("nothing.edge.example", .a)
        #expect(missing.responseCode == .nameError)
        #expect(missing.authorities.first?.type == .soa)
    }

    @Test func apexServesSOAAndNS() {
        #expect(ask("edge.example", .soa).answers.first?.type == .soa)
        #expect(ask("edge.example", .ns).answers.map(\.data) == [.ns(DNSName("ns1.edge.example")!)])
    }

    @Test func outsideTheZonesIsRefused() {
        let reply = ask("example.com", .a)
        #expect(reply.responseCode == .refused && !reply.authoritative)
    }

    @Test func questionCountOtherThanOneIsAFormatError() {
        var query = DNSMessage.query(id: 1, name: DNSName("app.edge.example")!, type: .a)
        query.questions.append(query.questions[0])
        #expect(Answerer.answer(query, zones: [Self.zone()])?.responseCode == .formatError)
        query.questions = []
        #expect(Answerer.answer(query, zones: [Self.zone()])?.responseCode == .formatError)
    }

    @Test func responsesAreDroppedAndOtherOpcodesNotImplemented() {
        var response = DNSMessage.query(id: 1, name: DNSName("app.edge.example")!, type: .a)
        response.isResponse = true
        #expect(Answerer.answer(response, zones: [Self.zone()]) == nil)
        var notify = DNSMessage.query(id: 1, name: DNSName("app.edge.example")!, type: .soa)
        notify.opcode = 4
        #expect(Answerer.answer(notify, zones: [Self.zone()])?.responseCode == .notImplemented)
    }

    @Test func reverseZoneAnswersNXDOMAINForApplicationAddresses() {
        let reverse = Zone(apex: DNSName("19.198.in-addr.arpa")!, nameServers: [DNSName("ns1.edge.example")!])
        let reply = Answerer.answer(
            DNSMessage.query(id: 1, name: DNSName("1.0.19.198.in-addr.arpa")!, type: .ptr), zones: [Self.zone(), reverse])
        #expect(reply?.responseCode == .nameError && reply?.authoritative == true)
    }

    @Test func updatesRaiseTheSerial() {
        let store = ZoneStore([Self.zone()])
        let before = store.snapshot[0].soa.serial
        let after = store.update(Self.apex) { $0.remove(DNSName("v4only.edge.example")!) }
        #expect(after == before + 1)
        #expect(
            Answerer.answer(DNSMessage.query(id: 1, name: DNSName("v4only.edge.example")!, type: .a), zones: store.snapshot)?.responseCode
                == .nameError)
    }
}
