import EdgeModel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// A TLS setting that cannot work, naming the application field it comes from.
public struct TLSConfigurationError: Error, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public var description: String { "\(field): \(message)" }
}

/// One application's TLS: the contexts the edge answers clients with and opens TLS origin legs
/// with, built once from its certificate files and shared by every connection. Contexts are
/// kept per application protocol (ALPN), since the edge answers a client with the protocol the
/// origin chose.
public final class EdgeTLS: Sendable {
    public let mode: TLSMode
    public let settings: EdgeTLSSettings
    private let server: TLSConfiguration
    private let origin: TLSConfiguration?
    /// The CAs a strict-mode origin certificate must chain to.
    private let originRoots: [Certificate]
    private let serverContexts = NIOLockedValueBox<[String: NIOSSLContext]>([:])
    private let originContexts = NIOLockedValueBox<[[String]: NIOSSLContext]>([:])
    /// Contexts kept per protocol choice; past this many choices, new ones are built per use.
    private static let contextLimit = 32

    /// Names of the files edgesim writes for an application without its own certificate.
    public static func issuedFiles(for appID: String, in folder: String) -> (certificate: String, key: String) {
        ("\(folder)/\(appID).pem", "\(folder)/\(appID)-key.pem")
    }

    /// Reads and checks everything the application's TLS needs. `issuedFolder` holds the
    /// certificates a fleet issued (and its `ca.pem`), used where the application names none.
    public init(app: Application, issuedFolder: String?) throws(TLSConfigurationError) {
        mode = app.tls
        settings = app.tlsSettings
        let issued = issuedFolder.map { Self.issuedFiles(for: app.id, in: $0) }
        guard let certificateFile = settings.certificateFile ?? issued?.certificate, let keyFile = settings.keyFile ?? issued?.key else {
            throw TLSConfigurationError(
                field: "tls_certificate",
                message: "no certificate: give tls_certificate and tls_key, or a folder of issued ones (edgesim run and up issue them)")
        }
        let field = settings.certificateFile == nil ? "tls_certificate (issued)" : "tls_certificate"
        let chain = try Self.certificates(certificateFile, field: field)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw TLSConfigurationError(field: "tls_key", message: "'\(keyFile)' is not a PEM private key")
        }
        try Self.checkKey(keyFile, matches: certificateFile)
        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion =
            switch settings.minimumVersion {
            case .v1_1: .tlsv11
            case .v1_2: .tlsv12
            case .v1_3: .tlsv13
            }
        if let ciphers = settings.ciphers {
            server.cipherSuiteValues = ciphers.compactMap { TLSCipherSuites.code($0).map(NIOTLSCipher.init(rawValue:)) }
        }
        self.server = server
        switch mode {
        case .off, .flexible:
            origin = nil
            originRoots = []
        case .full, .strict:
            var client = TLSConfiguration.makeClientConfiguration()
            client.minimumTLSVersion = .tlsv11
            client.cipherSuites = TLSCipherSuites.towardsOrigin.joined(separator: ":")
            // Strict checks the chain and name itself (`verifyOrigin`, called back by the TLS
            // library in place of its own chain check), to say why it refused.
            client.certificateVerification = mode == .strict ? .noHostnameVerification : .none
            origin = client
            if mode == .strict {
                guard let caFile = settings.originCAFile ?? issuedFolder.map({ "\($0)/\(LocalCA.certificateFile)" }) else {
                    throw TLSConfigurationError(
                        field: "origin_ca", message: "strict needs the CAs to trust: give origin_ca, or run under a fleet")
                }
                originRoots = try Self.x509Certificates(
                    caFile, field: settings.originCAFile == nil ? "origin_ca (the fleet's CA)" : "origin_ca")
            } else {
                originRoots = []
            }
        }
        // Build one context now, so that what only the TLS library rejects shows at start.
        do {
            _ = try serverContext(applicationProtocol: nil)
            if mode == .full || mode == .strict { _ = try originContext(applicationProtocols: []) }
        } catch {
            throw TLSConfigurationError(field: "tls", message: "the TLS library refused the settings: \(error)")
        }
    }

    /// The context that answers a client, offering `applicationProtocol` when the origin chose one.
    func serverContext(applicationProtocol: String?) throws -> NIOSSLContext {
        let key = applicationProtocol ?? ""
        if let context = serverContexts.withLockedValue({ $0[key] }) { return context }
        var configuration = server
        configuration.applicationProtocols = applicationProtocol.map { [$0] } ?? []
        let context = try NIOSSLContext(configuration: configuration)
        serverContexts.withLockedValue { if $0.count < Self.contextLimit { $0[key] = context } }
        return context
    }

    /// The context that opens an origin leg offering the client's application protocols.
    func originContext(applicationProtocols: [String]) throws -> NIOSSLContext {
        guard var configuration = origin else { throw TLSConfigurationError(field: "tls", message: "no TLS towards the origin") }
        if let context = originContexts.withLockedValue({ $0[applicationProtocols] }) { return context }
        configuration.applicationProtocols = applicationProtocols
        let context = try NIOSSLContext(configuration: configuration)
        originContexts.withLockedValue { if $0.count < Self.contextLimit { $0[applicationProtocols] = context } }
        return context
    }

    /// Strict mode's check of an origin's chain: it must lead to one of the trusted CAs, be
    /// valid now, and carry `name` (or, without a name, `address`). nil when it passes, else why not.
    func verifyOrigin(chain: [NIOSSLCertificate], name: String?, address: IPAddress) async -> String? {
        let certificates: [Certificate]
        do {
            certificates = try chain.map { try Certificate(derEncoded: $0.toDERBytes()) }
        } catch {
            return "the origin's certificate cannot be read: \(error)"
        }
        guard let leaf = certificates.first else { return "the origin sent no certificate" }
        let now = Date()
        if leaf.notValidAfter < now { return "the origin's certificate expired at \(leaf.notValidAfter)" }
        if leaf.notValidBefore > now { return "the origin's certificate is not valid before \(leaf.notValidBefore)" }
        let serverIP = name == nil ? "\(address)" : nil
        var verifier = Verifier(rootCertificates: CertificateStore(originRoots)) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: name, serverIP: serverIP)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst())) {
        case .validCertificate:
            return nil
        case .couldNotValidate(let failures):
            if leaf.issuer == leaf.subject, !originRoots.contains(leaf) { return "the origin's certificate is self-signed and not trusted" }
            let named = name ?? serverIP ?? ""
            if let failure = failures.first {
                let reason = "\(failure.policyFailureReason)"
                if reason.contains("not match") || reason.lowercased().contains("name") {
                    return "the origin's certificate is not for '\(named)' (\(reason))"
                }
                return "the origin's certificate was refused: \(reason)"
            }
            return "the origin's certificate does not chain to a trusted CA"
        }
    }

    /// Checks the files an application names itself (those a fleet issues come later), so a
    /// file that cannot work is an error before anything starts.
    public static func checkOwnFiles(of app: Application) throws(TLSConfigurationError) {
        let settings = app.tlsSettings
        if let certificate = settings.certificateFile, let key = settings.keyFile {
            _ = try certificates(certificate, field: "tls_certificate")
            do {
                _ = try NIOSSLPrivateKey(file: key, format: .pem)
            } catch {
                throw TLSConfigurationError(field: "tls_key", message: "'\(key)' is not a PEM private key")
            }
            try checkKey(key, matches: certificate)
        }
        if let ca = settings.originCAFile { _ = try x509Certificates(ca, field: "origin_ca") }
    }

    // MARK: Reading files

    private static func certificates(_ path: String, field: String) throws(TLSConfigurationError) -> [NIOSSLCertificate] {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSConfigurationError(field: field, message: "cannot read a PEM certificate from '\(path)'")
        }
        guard !chain.isEmpty else { throw TLSConfigurationError(field: field, message: "'\(path)' holds no certificate") }
        return chain
    }

    private static func x509Certificates(_ path: String, field: String) throws(TLSConfigurationError) -> [Certificate] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TLSConfigurationError(field: field, message: "cannot read '\(path)'")
        }
        let certificates: [Certificate]
        do {
            certificates = try PEMDocument.parseMultiple(pemString: text).filter { $0.discriminator == "CERTIFICATE" }.map {
                try Certificate(pemDocument: $0)
            }
        } catch {
            throw TLSConfigurationError(field: field, message: "'\(path)' is not a PEM certificate bundle: \(error)")
        }
        guard !certificates.isEmpty else { throw TLSConfigurationError(field: field, message: "'\(path)' holds no certificate") }
        return certificates
    }

    /// A key that does not belong to the certificate would only fail at the first handshake.
    private static func checkKey(_ keyPath: String, matches certificatePath: String) throws(TLSConfigurationError) {
        guard let keyText = try? String(contentsOfFile: keyPath, encoding: .utf8),
            let certificateText = try? String(contentsOfFile: certificatePath, encoding: .utf8),
            let first = try? PEMDocument.parseMultiple(pemString: certificateText).first,
            let certificate = try? Certificate(pemDocument: first)
        else { return }
        guard let key = try? Certificate.PrivateKey(pemEncoded: keyText) else { return }
        if key.publicKey != certificate.publicKey {
            throw TLSConfigurationError(field: "tls_key", message: "'\(keyPath)' is not the key of the certificate in '\(certificatePath)'")
        }
    }
}
