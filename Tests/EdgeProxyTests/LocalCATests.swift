import EdgeModel
import EdgeProxy
import Foundation
import Testing

/// The local CA and what it issues, judged by OpenSSL: a chain `openssl verify` accepts for the
/// names and addresses asked for and refuses for others, expired or from another CA; a live TLS
/// server with an issued certificate that `openssl s_client -CAfile` trusts.
@Suite(
    .enabled(if: OpenSSL.path != nil || !ExternalProcess.mayBeMissing("openssl"), "openssl is not installed (scripts/setup installs it)"))
struct LocalCATests {
    /// A scratch folder holding a CA and certificates, removed afterwards.
    func withFolder(_ body: (URL) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-ca-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder)
    }

    func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try OpenSSL.run(arguments)
    }

    @Test func anIssuedCertificateVerifiesForItsNamesAndAddressesOnly() async throws {
        try await withFolder { folder in
            let ca = try LocalCA()
            let caFile = try ca.write(to: folder).path
            let issued = try ca.issue(names: ["echo.lab.example", "echo.apps.edgesim.test"], addresses: [IPAddress("198.19.0.1")!])
            let leaf = try issued.write(to: folder, name: "echo").certificate.path
            for check in [
                ["-verify_hostname", "echo.lab.example"], ["-verify_hostname", "echo.apps.edgesim.test"], ["-verify_ip", "198.19.0.1"],
            ] {
                let (status, output) = try openssl(["verify", "-CAfile", caFile] + check + [leaf])
                #expect(status == 0 && output.contains("\(leaf): OK"), "\(check): \(output)")
            }
            let (wrongName, said) = try openssl(["verify", "-CAfile", caFile, "-verify_hostname", "other.example", leaf])
            #expect(wrongName != 0 && said.contains("hostname mismatch"), "\(said)")
            let (wrongAddress, saidAddress) = try openssl(["verify", "-CAfile", caFile, "-verify_ip", "198.19.0.2", leaf])
            #expect(wrongAddress != 0 && saidAddress.contains("IP address mismatch"), "\(saidAddress)")
            let (_, text) = try openssl(["x509", "-in", leaf, "-noout", "-text"])
            #expect(text.contains("DNS:echo.lab.example, DNS:echo.apps.edgesim.test, IP Address:198.19.0.1"), "\(text)")
            #expect(text.contains("TLS Web Server Authentication"))
        }
    }

    @Test func anExpiredCertificateOrOneOfAnotherCAIsRefused() async throws {
        try await withFolder { folder in
            let ca = try LocalCA()
            let caFile = try ca.write(to: folder).path
            let day: TimeInterval = 86_400
            let expired = try ca.issue(
                names: ["old.example"], notBefore: Date().addingTimeInterval(-10 * day), notAfter: Date().addingTimeInterval(-day))
            let expiredFile = try expired.write(to: folder, name: "old").certificate.path
            let (status, output) = try openssl(["verify", "-CAfile", caFile, expiredFile])
            #expect(status != 0 && output.contains("certificate has expired"), "\(output)")

            let stranger = try LocalCA(name: "another CA").issue(names: ["echo.lab.example"])
            let strangerFile = try stranger.write(to: folder, name: "stranger").certificate.path
            let (refused, said) = try openssl(["verify", "-CAfile", caFile, strangerFile])
            #expect(refused != 0 && said.contains("unable to get local issuer certificate"), "\(said)")
        }
    }

    @Test func aWrittenCAIsReadBackAndAForeignKeyIsRefused() async throws {
        try await withFolder { folder in
            let ca = try LocalCA()
            try ca.write(to: folder)
            let attributes = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(LocalCA.keyFile).path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let loaded = try LocalCA.load(from: folder)
            #expect(loaded.certificate == ca.certificate)
            // What the loaded CA issues, the written certificate verifies.
            let leaf = try loaded.issue(names: ["a.example"]).write(to: folder, name: "a").certificate.path
            let (status, _) = try openssl(["verify", "-CAfile", folder.appendingPathComponent(LocalCA.certificateFile).path, leaf])
            #expect(status == 0)

            let otherKey = try String(contentsOf: try LocalCA().issue(names: ["x"]).write(to: folder, name: "x").key, encoding: .utf8)
            #expect(throws: LocalCA.Failure.self) { try LocalCA(certificatePEM: ca.certificatePEM, keyPEM: otherKey) }
            #expect(throws: LocalCA.Failure.self) { try LocalCA(certificatePEM: "not a certificate", keyPEM: otherKey) }
            #expect(throws: LocalCA.Failure.self) {
                try LocalCA(certificatePEM: ca.certificatePEM, keyPEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n")
            }
        }
    }

    /// A real TLS server (openssl s_server, answering HTTP so it does not wait on its input) with an
    /// issued certificate and key; openssl s_client, trusting only the CA file, checks the chain and
    /// the name.
    @Test func sClientTrustsAServerWithAnIssuedCertificate() async throws {
        try await withFolder { folder in
            let ca = try LocalCA()
            let caFile = try ca.write(to: folder).path
            let files = try ca.issue(names: ["echo.lab.example"], addresses: [IPAddress("127.0.0.1")!]).write(to: folder, name: "echo")
            let server = try ExternalProcess(
                try #require(OpenSSL.path),
                ["s_server", "-accept", "127.0.0.1:0", "-cert", files.certificate.path, "-key", files.key.path, "-naccept", "2", "-www"])
            defer { server.stop() }
            let accepting = try #require(await server.waitForLine(containing: "ACCEPT"), "\(server.output)")
            let port = try #require(accepting.split(separator: ":").last.flatMap { UInt16($0) })
            let (status, output) = try openssl([
                "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", caFile, "-verify_return_error", "-verify_hostname",
                "echo.lab.example", "-brief",
            ])
            #expect(status == 0 && output.contains("Verification: OK"), "\(output)")
            // The same server under a name its certificate does not carry is refused.
            let (refused, said) = try openssl([
                "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", caFile, "-verify_return_error", "-verify_hostname",
                "other.example", "-brief",
            ])
            #expect(refused != 0 && said.contains("hostname mismatch"), "\(said)")
        }
    }
}

/// Where the openssl command is, when it is installed.
enum OpenSSL {
    static let path = ExternalProcess.find("openssl")
}
