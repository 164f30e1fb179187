import EdgeModel
import Foundation
import NIOCore
import Testing

@testable import EdgeProxy

/// Edge TLS on a live node, judged by OpenSSL: `openssl s_client` for what the edge accepts and
/// negotiates, `openssl s_server` as the origin for what the edge offers and how strict mode
/// judges certificates.
@Suite(
    .enabled(if: OpenSSL.path != nil || !ExternalProcess.mayBeMissing("openssl"), "openssl is not installed (scripts/setup installs it)"))
struct EdgeTLSTests {
    static let name = "app.tls.example"

    /// A folder with a CA and a certificate issued for the application, removed afterwards.
    final class Fixture {
        let folder: URL
        let ca: LocalCA
        var caFile: String { folder.appendingPathComponent(LocalCA.certificateFile).path }

        init(appID: String) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-test-tls-\(UUID().uuidString)")
            ca = try LocalCA()
            try ca.write(to: folder)
            try ca.issue(names: [EdgeTLSTests.name]).write(to: folder, name: appID)
        }

        deinit { try? FileManager.default.removeItem(at: folder) }

        func node(_ app: Application, at edge: IPAddress) -> EdgeNode {
            var configuration = ProxyConfiguration()
            configuration.certificateFolder = folder.path
            configuration.headerTimeout = .seconds(5)
            return EdgeNode(applications: [app], listen: [edge], configuration: configuration)
        }

        /// A self-signed certificate and key made by openssl, for `name`.
        func selfSigned(name: String) throws -> (certificate: String, key: String) {
            let certificate = folder.appendingPathComponent("self-\(name).pem").path
            let key = folder.appendingPathComponent("self-\(name)-key.pem").path
            let (status, output) = try OpenSSL.run([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=\(name)",
                "-addext", "subjectAltName=DNS:\(name)", "-keyout", key, "-out", certificate,
            ])
            #expect(status == 0, "\(output)")
            return (certificate, key)
        }

        /// `openssl s_server` on loopback with this certificate, answering each request with a page.
        func origin(certificate: String, key: String, trace: Bool = false, alpn: String? = nil) async throws -> (ExternalProcess, Endpoint)
        {
            let address = Loopback.address()
            var arguments = ["s_server", "-accept", "\(address):0", "-cert", certificate, "-key", key, "-www"]
            if trace { arguments.append("-trace") }
            if let alpn { arguments += ["-alpn", alpn] }
            let server = try ExternalProcess(try #require(OpenSSL.path), arguments)
            let accepting = try #require(await server.waitForLine(containing: "ACCEPT"), "\(server.output)")
            let port = try #require(accepting.split(separator: ":").last.flatMap { UInt16($0) })
            return (server, Endpoint(address, port))
        }
    }

    func app(_ id: String, tls: TLSMode, origin: Endpoint, port: UInt16 = 443, minimum: TLSVersionSetting = .v1_1) -> Application {
        var app = application(id, "tcp/\(port)", origins: ["tcp://\(origin)"])
        app.tls = tls
        app.dns = PublicName(type: .cname, name: Self.name)
        app.tlsSettings.minimumVersion = minimum
        return app
    }

    static let request = Array("GET / HTTP/1.0\r\n\r\n".utf8)

    // MARK: Versions and modes

    /// Each mode with TLS 1.1, 1.2 and 1.3 from openssl s_client: the version asked for is the
    /// one negotiated, the edge's certificate is trusted through the CA file, and the connection
    /// reaches its origin (plain for flexible; for full and strict a built-in origin serving TLS
    /// with a certificate from the same CA for the name the client asked for). Then bytes echo
    /// through both legs.
    @Test(arguments: [TLSMode.flexible, .full, .strict], ["1.1", "1.2", "1.3"])
    func sClientNegotiatesEachVersionInEachMode(mode: TLSMode, version: String) async throws {
        let fixture = try Fixture(appID: "each")
        let originAddress = Loopback.address()
        var originTLS: (certificate: String, key: String)?
        if mode != .flexible {
            let files = try fixture.ca.issue(names: [Self.name]).write(to: fixture.folder, name: "origin")
            originTLS = (files.certificate.path, files.key.path)
        }
        let origin = TCPOrigin(tls: originTLS)
        let originEndpoint = try await origin.start(address: originAddress)[0]
        let edge = Loopback.address()
        let node = fixture.node(app("each", tls: mode, origin: originEndpoint), at: edge)
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }

        var arguments = [
            "s_client", "-connect", "\(edge):443", "-servername", Self.name, "-CAfile", fixture.caFile, "-verify_return_error",
            "-brief", "-tls\(version.replacingOccurrences(of: ".", with: "_"))",
        ]
        if version == "1.1" { arguments += ["-cipher", "DEFAULT@SECLEVEL=0"] }
        let (status, output) = try await OpenSSL.runAside(arguments)
        #expect(status == 0, "\(output)")
        #expect(output.contains("Protocol version: TLSv\(version)"), "\(output)")
        #expect(output.contains("Verification: OK"), "\(output)")
        let connected = try #require(await node.events.first { $0.event == .connect || $0.event == .tlsError })
        #expect(connected.event == .connect, "\(connected.message ?? "")")
        #expect(connected.origin == originEndpoint.description)

        let payload = randomBytes(100_000)
        let echoed = try await TLSTestClient.exchange(
            with: Endpoint(edge, 443), caFile: fixture.caFile, serverName: Self.name, sending: payload, expecting: payload.count)
        #expect(echoed.received == payload, "the bytes came back through both legs")
        #expect(echoed.version == .tlsv13)
    }

    @Test func aClientBelowTheMinimumVersionIsRefusedWithATLSError() async throws {
        let fixture = try Fixture(appID: "min")
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let node = fixture.node(app("min", tls: .flexible, origin: originEndpoint, minimum: .v1_3), at: edge)
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }
        let (status, output) = try await OpenSSL.runAside([
            "s_client", "-connect", "\(edge):443", "-servername", Self.name, "-CAfile", fixture.caFile, "-brief", "-tls1_2",
        ])
        #expect(status != 0, "\(output)")
        let event = try #require(await node.events.first { $0.event == .tlsError }, "\(node.events.events)")
        #expect(event.status == StatusCode.clientHandshakeFailed.rawValue)
        #expect(event.message?.contains("UNSUPPORTED_PROTOCOL") == true, "\(event.message ?? "")")
    }

    @Test func plainTextToATLSApplicationIsATLSErrorNamingWhatCame() async throws {
        let fixture = try Fixture(appID: "plain")
        let origin = TCPOrigin()
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        let edge = Loopback.address()
        let node = fixture.node(app("plain", tls: .flexible, origin: originEndpoint), at: edge)
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }
        let result = try await TCPTestClient.exchange(with: Endpoint(edge, 443), sending: Self.request)
        #expect(result.received.isEmpty)
        let event = try #require(await node.events.first { $0.event == .tlsError })
        #expect(event.status == StatusCode.clientHandshakeFailed.rawValue)
        #expect(event.message?.contains("it began 'GET / HT'") == true, "\(event.message ?? "")")
        #expect(origin.connections.isEmpty, "no origin leg for a client that never spoke TLS")
    }

    /// Full towards `openssl s_server -trace`: the cipher suites offered in the reference's order,
    /// the client's SNI and ALPN passed on, and the origin's protocol choice given to the client.
    @Test func fullOffersTheReferenceCipherOrderAndPassesSNIAndALPN() async throws {
        let fixture = try Fixture(appID: "full")
        let origin = try fixture.selfSigned(name: "origin.example")
        let (server, originEndpoint) = try await fixture.origin(
            certificate: origin.certificate, key: origin.key, trace: true, alpn: "http/1.1")
        defer { server.stop() }
        let edge = Loopback.address()
        let node = fixture.node(app("full", tls: .full, origin: originEndpoint), at: edge)
        _ = try await node.start()
        defer { Task { await node.stop() } }

        let reply = try await TLSTestClient.exchange(
            with: Endpoint(edge, 443), caFile: fixture.caFile, serverName: Self.name, sending: Self.request, expecting: .max,
            applicationProtocols: ["h2", "http/1.1"])
        let page = String(decoding: reply.received, as: UTF8.self)
        #expect(page.contains("HTTP/1.0 200 ok"), "full accepts a self-signed origin: \(page.prefix(300))")
        #expect(reply.negotiatedProtocol == "http/1.1", "the client gets the protocol the origin chose")

        let trace = server.output
        let offered = Self.cipherSuites(inTrace: trace)
        let expected = [
            "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
        ]
        #expect(offered == expected, "\(offered)")
        let sni = trace.firstIndex { $0.contains("extension_type=server_name") }.map { trace[$0 + 1] } ?? ""
        #expect(sni.contains("app.tls.ex"), "the client's SNI reached the origin: \(sni)")
        #expect(trace.contains("ALPN protocols advertised by the client: h2, http/1.1"), "the client's ALPN reached the origin")
    }

    /// The cipher suites of the first ClientHello in `openssl s_server -trace` output, in order.
    static func cipherSuites(inTrace lines: [String]) -> [String] {
        guard let start = lines.firstIndex(where: { $0.contains("cipher_suites") }) else { return [] }
        var suites: [String] = []
        for line in lines[(start + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("{0x") else { break }
            if let name = trimmed.split(separator: " ").last { suites.append(String(name)) }
        }
        return suites
    }

    // MARK: Strict

    enum OriginCertificate: String, CaseIterable {
        case valid, selfSigned, expired, wrongName
    }

    func originFiles(_ kind: OriginCertificate, fixture: Fixture) throws -> (certificate: String, key: String) {
        let day: TimeInterval = 86_400
        let files: (certificate: URL, key: URL)
        switch kind {
        case .valid: files = try fixture.ca.issue(names: [Self.name]).write(to: fixture.folder, name: "origin-valid")
        case .selfSigned: return try fixture.selfSigned(name: Self.name)
        case .expired:
            files = try fixture.ca.issue(
                names: [Self.name], notBefore: Date().addingTimeInterval(-10 * day), notAfter: Date().addingTimeInterval(-day)
            ).write(to: fixture.folder, name: "origin-expired")
        case .wrongName: files = try fixture.ca.issue(names: ["other.example"]).write(to: fixture.folder, name: "origin-wrong")
        }
        return (files.certificate.path, files.key.path)
    }

    /// Strict takes only a certificate from the trusted CA, valid now, for the name asked for;
    /// full takes all four.
    @Test(arguments: [TLSMode.strict, .full], OriginCertificate.allCases)
    func strictRefusesBadOriginCertificatesAndFullTakesThem(mode: TLSMode, kind: OriginCertificate) async throws {
        let fixture = try Fixture(appID: "judge")
        let files = try originFiles(kind, fixture: fixture)
        let (server, originEndpoint) = try await fixture.origin(certificate: files.certificate, key: files.key)
        defer { server.stop() }
        let edge = Loopback.address()
        let node = fixture.node(app("judge", tls: mode, origin: originEndpoint), at: edge)
        _ = try await node.start()
        defer { Task { await node.stop() } }

        let reply = try? await TLSTestClient.exchange(
            with: Endpoint(edge, 443), caFile: fixture.caFile, serverName: Self.name, sending: Self.request, expecting: .max)
        let page = String(decoding: reply?.received ?? [], as: UTF8.self)
        if mode == .full || kind == .valid {
            #expect(page.contains("HTTP/1.0 200 ok"), "\(mode) with a \(kind) origin certificate: \(page.prefix(200))")
            #expect(node.events.count(.tlsError) == 0)
            return
        }
        #expect(!page.contains("200 ok"))
        let event = try #require(await node.events.first { $0.event == .tlsError })
        #expect(event.status == StatusCode.originCertificateInvalid.rawValue)
        let reason = event.message ?? ""
        switch kind {
        case .selfSigned: #expect(reason.contains("self-signed"), "\(reason)")
        case .expired: #expect(reason.contains("expired"), "\(reason)")
        case .wrongName: #expect(reason.contains("not for 'app.tls.example'"), "\(reason)")
        case .valid: break
        }
        #expect(event.origin == originEndpoint.description)
    }

    /// Full and strict towards a built-in origin serving TLS behind a PROXY v1 header: the header
    /// goes first in the clear, the bytes echo back through both TLS legs, and the origin learns
    /// the client's address.
    @Test(arguments: [TLSMode.full, .strict])
    func aBuiltInTLSOriginBehindAPROXYHeaderEchoes(mode: TLSMode) async throws {
        let fixture = try Fixture(appID: "behind")
        let originAddress = Loopback.address()
        let files = try fixture.ca.issue(names: [Self.name], addresses: [originAddress]).write(to: fixture.folder, name: "origin")
        let origin = TCPOrigin(expecting: .v1, tls: (files.certificate.path, files.key.path))
        let originEndpoint = try await origin.start(address: originAddress)[0]
        var app = app("behind", tls: mode, origin: originEndpoint)
        app.proxyProtocol = .v1
        let edge = Loopback.address()
        let node = fixture.node(app, at: edge)
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }
        for round in 0..<20 {
            let payload = randomBytes(16 * 1024 + round)
            let echoed = try await TLSTestClient.exchange(
                with: Endpoint(edge, 443), caFile: fixture.caFile, serverName: Self.name, sending: payload, expecting: payload.count)
            #expect(echoed.received == payload, "round \(round): \(echoed.received.count) of \(payload.count) bytes came back")
        }
        #expect(origin.connections.count == 20)
        #expect(origin.connections.allSatisfy { $0.header?.source?.address.isIPv4 == true })
        #expect(node.events.count(.tlsError) == 0)
    }

    // MARK: Configuration

    @Test func badConfigurationFilesEachNameTheirField() throws {
        let fixture = try Fixture(appID: "conf")
        let otherKey = try LocalCA().issue(names: ["x"]).write(to: fixture.folder, name: "other").key.path
        let garbage = fixture.folder.appendingPathComponent("garbage.pem").path
        try "not a PEM file\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let certificate = EdgeTLS.issuedFiles(for: "conf", in: fixture.folder.path).certificate
        let key = EdgeTLS.issuedFiles(for: "conf", in: fixture.folder.path).key
        let origin = Endpoint(IPAddress("127.0.0.1")!, 9)

        func failure(certificate: String?, key: String?, folder: String?, mode: TLSMode = .flexible) -> TLSConfigurationError? {
            var app = app("conf", tls: mode, origin: origin)
            app.tlsSettings.certificateFile = certificate
            app.tlsSettings.keyFile = key
            do {
                _ = try EdgeTLS(app: app, issuedFolder: folder)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure(certificate: nil, key: nil, folder: fixture.folder.path) == nil, "the issued certificate is used")
        #expect(failure(certificate: certificate, key: key, folder: nil) == nil, "or the application's own")
        #expect(failure(certificate: nil, key: nil, folder: nil)?.field == "tls_certificate")
        #expect(failure(certificate: garbage, key: key, folder: nil)?.field == "tls_certificate")
        #expect(failure(certificate: certificate, key: garbage, folder: nil)?.field == "tls_key")
        let mismatch = failure(certificate: certificate, key: otherKey, folder: nil)
        #expect(
            mismatch?.field == "tls_key" && mismatch?.message.contains("is not the key of the certificate") == true,
            "\(String(describing: mismatch))")
        #expect(failure(certificate: certificate, key: key, folder: nil, mode: .strict)?.field == "origin_ca", "strict needs CAs to trust")
    }

    /// Settings that only fail on the node: every connection gets a TLS error with status 540.
    @Test func anUnusableConfigurationAnswersEachConnectionWith540() async throws {
        let fixture = try Fixture(appID: "broken")
        var broken = app("broken", tls: .flexible, origin: Endpoint(IPAddress("127.0.0.1")!, 9))
        broken.id = "missing"
        let edge = Loopback.address()
        let node = fixture.node(broken, at: edge)
        _ = try await node.start()
        defer { Task { await node.stop() } }
        _ = try await TCPTestClient.exchange(with: Endpoint(edge, 443), sending: [22])
        let event = try #require(await node.events.first { $0.event == .tlsError })
        #expect(event.status == StatusCode.tlsConfiguration.rawValue)
        #expect(event.message?.contains("tls_certificate") == true, "\(event.message ?? "")")
    }
}

extension OpenSSL {
    /// Runs openssl to the end with no input; its status and everything it printed.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ExternalProcess.run(try #require(path, "openssl is not installed"), arguments)
    }

    /// The same, for a client of a server in this process (see `ExternalProcess.runAside`).
    static func runAside(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ExternalProcess.runAside(try #require(path, "openssl is not installed"), arguments)
    }
}
