import Benchmark
import EdgeDNS
import EdgeModel
import EdgeProxy
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.cpuTotal, .wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2))

    let client = Endpoint(IPAddress("2001:db8:1::55")!, 50123)
    let edge = Endpoint(IPAddress("2001:db8:a::1")!, 25)
    let header = ProxyHeader(transport: .stream, source: client, destination: edge)

    // What the harness itself allocates per sample: subtract it from the others.
    Benchmark("Baseline: an empty iteration") { benchmark in
        for index in benchmark.scaledIterations { blackHole(index) }
    }

    Benchmark("PROXY v1 encode+decode (TCP6)") { benchmark in
        var buffer = ByteBuffer()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            buffer.writeProxyV1(header)
            blackHole(try buffer.readProxyV1())
        }
    }

    // Set-up (the buffer's storage, the header) is outside the measurement: what is counted is
    // what each header costs, as a node pays it per connection or per datagram.
    Benchmark("PROXY v2 encode+decode (TCP6)") { benchmark in
        var buffer = ByteBuffer()
        buffer.writeProxyV2(header)
        buffer.clear()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            buffer.writeProxyV2(header)
            blackHole(try buffer.readProxyV2())
        }
    }

    let spp = SimpleProxyHeader(client: Endpoint(IPAddress("198.18.1.1")!, 5000), proxy: Endpoint(IPAddress("198.19.0.1")!, 53))
    Benchmark("Simple Proxy Protocol encode+decode") { benchmark in
        var buffer = ByteBuffer()
        buffer.writeSimpleProxyHeader(spp)
        buffer.clear()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            buffer.writeSimpleProxyHeader(spp)
            blackHole(try buffer.readSimpleProxyHeader())
        }
    }

    // 1,000 prefix rules, 200 ASN and 50 country rules; the client matches several of them.
    let rules: [AccessRule] =
        (0..<1000).map {
            AccessRule(
                action: $0 % 2 == 0 ? .block : .allow,
                target: .prefix(IPPrefix(uncheckedAddress: .v4(0xC612_0000 + UInt32($0) << 8), length: 24)))
        }
        + (0..<200).map { AccessRule(action: .block, target: .asn(64500 + UInt32($0))) }
        + (0..<50).map { AccessRule(action: .allow, target: .country(String(UnicodeScalar(65 + $0 % 26)!) + "X")) }
    let table = (0..<500).map {
        PrefixInfo(
            prefix: IPPrefix(uncheckedAddress: .v4(0xC612_0000 + UInt32($0) << 9), length: 23), country: "FX", asn: 64500 + UInt32($0 % 200)
        )
    }
    let matcher = AccessRuleMatcher(rules: rules, prefixes: table)
    let address = IPAddress("198.18.77.9")!

    Benchmark("Access rule decision (1,250 rules, 500 prefixes)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(matcher.decide(address))
        }
    }

    var zone = Zone(apex: DNSName("edge.example")!, nameServers: [DNSName("ns1.edge.example")!])
    for index in 0..<1000 {
        zone.add(DNSRecord(name: DNSName("app\(index).edge.example")!, ttl: 30, data: .a(.v4(0xC613_0000 + UInt32(index)))))
    }
    let zones = [zone]
    var query = ByteBuffer()
    query.writeDNSMessage(DNSMessage.query(id: 1, name: DNSName("app500.edge.example")!, type: .a))

    // Reading is linear in a document's size: the largest list the limits allow, and a file of
    // 10,000 applications decoded (their conflicts found by hash, not pairwise).
    let bigList = Array(("[" + (0..<199_999).map(String.init).joined(separator: ",") + "]").utf8)
    Benchmark("Document read: a list of 199,999 values", configuration: .init(maxDuration: .seconds(5), maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try DocumentReader.read(bigList, file: "list.json")) }
    }
    let applications = Array(
        ("["
            + (0..<10_000).map {
                "{\"id\": \"app\($0)\", \"protocol\": \"tcp/\(1000 + $0)\", \"dns\": {\"type\": \"CNAME\", \"name\": \"a\($0).example\"}, \"origin_direct\": [\"tcp://198.51.100.1:80\"]}"
            }.joined(separator: ",") + "]").utf8)
    Benchmark("Applications decode: 10,000 in one file", configuration: .init(maxDuration: .seconds(5), maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            let node = try DocumentReader.read(applications, file: "apps.json")
            blackHole(ConfigLoader().decode(node, as: .applications))
        }
    }

    Benchmark("DNS query read + answer + write") { benchmark in
        var reply = ByteBuffer()
        for _ in benchmark.scaledIterations {
            reply.clear()
            let message = try query.readDNSMessage()
            reply.writeDNSMessage(Answerer.answer(message, zones: zones)!, maxSize: 1232)
            blackHole(reply)
        }
    }
}
