import EdgeModel
import EdgePcap
import EdgeProxy
import EdgeSim
import Foundation
import Testing

@Suite final class FileValidatorTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-validator-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    static let topology = """
        name: tiny
        edge_nodes: [{name: edge}]
        clients: [{name: client}]
        origins: [{name: dns, kind: udp-echo, ports: [53]}]
        links:
          - {between: [client, edge], rtt: 2ms}
          - {between: [edge, dns], rtt: 2ms}
        """

    func scenario(capture: [UInt8]) throws -> String {
        try Self.topology.write(to: folder.appendingPathComponent("tiny.yaml"), atomically: true, encoding: .utf8)
        try Data(capture).write(to: folder.appendingPathComponent("queries.pcap"))
        let text = """
            name: replay
            topology: tiny.yaml
            apps:
              - {id: dns, protocol: udp/53, dns: {type: CNAME, name: dns.example}, origin_direct: ["udp://dns:53"]}
            timeline:
              - at: 0s
                replay: {pcap: queries.pcap, from: client, app: dns, speed: 2}
            """
        let path = folder.appendingPathComponent("replay.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// One IPv4/UDP datagram from 198.18.1.1:5000 to 198.19.0.1:53.
    static let query: [UInt8] =
        [0x45, 0, 0, 33, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 1, 1, 198, 19, 0, 1] + [0x13, 0x88, 0, 53, 0, 13, 0, 0] + Array("hello".utf8)

    @Test func scenarioWithAReadableCaptureIsValid() throws {
        let capture = PcapWriter.file(linkType: 101, packets: [(timestamp: 1, data: Self.query)])
        let result = FileValidator().validate(try scenario(capture: capture))
        #expect(result.isValid, "\(result.issues)")
        #expect(result.summary.contains("1 step"))
    }

    @Test func aCaptureWithNothingForTheApplicationIsInvalid() throws {
        // Not IP at all: nothing to replay.
        let capture = PcapWriter.file(linkType: 101, packets: [(timestamp: 1, data: Array(repeating: 0x15, count: 28))])
        let result = FileValidator().validate(try scenario(capture: capture))
        #expect(!result.isValid)
        #expect(
            result.issues.first?.message.hasSuffix("has no flow to replay (no TCP or UDP flow in 1 records)") == true, "\(result.issues)")
    }

    @Test func unreadableCaptureMakesTheScenarioInvalid() throws {
        let result = FileValidator().validate(try scenario(capture: Array("not pcap".utf8)))
        #expect(!result.isValid)
        #expect(result.issues.first?.message.contains("not a readable pcap or pcapng capture") == true)
        #expect(result.issues.first?.location.line == 6)
    }

    @Test func emptyCaptureIsReported() throws {
        let result = FileValidator().validate(try scenario(capture: PcapWriter.file(linkType: 101, packets: [])))
        #expect(result.issues.first?.message.contains("holds no packets") == true)
    }

    /// Certificate files that cannot serve are errors naming the field, as a node would find them.
    @Test func tlsFilesAreReadAsANodeWouldReadThem() throws {
        let ca = try LocalCA()
        let own = try ca.issue(names: ["a.example"]).write(to: folder, name: "own")
        let other = try ca.issue(names: ["b.example"]).write(to: folder, name: "other")
        try "not a certificate\n".write(to: folder.appendingPathComponent("garbage.pem"), atomically: true, encoding: .utf8)
        func validate(certificate: String, key: String) throws -> ValidationResult {
            let apps = folder.appendingPathComponent("apps-\(UUID().uuidString).yaml")
            try """
            - protocol: tcp/443
              dns: {type: CNAME, name: a.example}
              origin_direct: ["tcp://198.18.0.1:80"]
              tls: flexible
              tls_certificate: \(certificate)
              tls_key: \(key)
            """.write(to: apps, atomically: true, encoding: .utf8)
            return FileValidator().validate(apps.path)
        }
        #expect(try validate(certificate: own.certificate.path, key: own.key.path).isValid)
        let garbage = try validate(certificate: "garbage.pem", key: own.key.path)
        #expect(garbage.issues.map(\.field) == ["tls_certificate"], "\(garbage.issues)")
        let mismatch = try validate(certificate: own.certificate.path, key: other.key.path)
        #expect(
            mismatch.issues.map(\.field) == ["tls_key"] && mismatch.issues[0].message.contains("is not the key of"), "\(mismatch.issues)")
    }
}
