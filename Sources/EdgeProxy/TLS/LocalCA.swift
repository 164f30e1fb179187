import Crypto
import EdgeModel
import Foundation
import SwiftASN1
import X509

/// A certificate authority of edgesim's own: a P-256 key and a self-signed CA certificate, from
/// which certificates for application names, generated names and addresses are issued, so that
/// `curl --cacert` and `openssl s_client -CAfile` can trust what the edge and built-in origins
/// present.
public struct LocalCA: Sendable {
    public let certificate: Certificate
    private let key: P256.Signing.PrivateKey

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// File names `write(to:)` uses and `load(from:)` reads.
    public static let certificateFile = "ca.pem"
    public static let keyFile = "ca-key.pem"

    /// A new CA valid from `now` (less a minute, for clocks a little behind) for `validity`.
    public init(name: String = "edgesim local CA", now: Date = Date(), validity: TimeInterval = 365 * 86_400) throws {
        key = P256.Signing.PrivateKey()
        let signer = Certificate.PrivateKey(key)
        let subject = try DistinguishedName {
            OrganizationName("edgesim")
            CommonName(name)
        }
        certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: signer.publicKey,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validity), issuer: subject,
            subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: signer.publicKey)
            },
            issuerPrivateKey: signer)
    }

    /// A CA read back from its PEM texts; the key must be the certificate's.
    public init(certificatePEM: String, keyPEM: String) throws(Failure) {
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw Failure(description: "the CA certificate is not a PEM certificate: \(error)")
        }
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        } catch {
            throw Failure(description: "the CA key is not a PEM P-256 private key: \(error)")
        }
        guard Certificate.PrivateKey(key).publicKey == certificate.publicKey else {
            throw Failure(description: "the CA key does not belong to the CA certificate")
        }
    }

    public var certificatePEM: String {
        (try? certificate.serializeAsPEM().pemString) ?? ""
    }

    /// Writes ca.pem (readable by all) and ca-key.pem (the owner's only) into `folder`; the
    /// certificate's path.
    @discardableResult
    public func write(to folder: URL) throws -> URL {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificateURL = folder.appendingPathComponent(Self.certificateFile)
        let keyURL = folder.appendingPathComponent(Self.keyFile)
        try Data(certificatePEM.endingLine.utf8).write(to: certificateURL, options: .atomic)
        _ = FileManager.default.createFile(atPath: keyURL.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data(key.pemRepresentation.endingLine.utf8).write(to: keyURL)
        return certificateURL
    }

    /// The CA written to `folder` earlier.
    public static func load(from folder: URL) throws -> LocalCA {
        let certificate = try String(contentsOf: folder.appendingPathComponent(certificateFile), encoding: .utf8)
        let key = try String(contentsOf: folder.appendingPathComponent(keyFile), encoding: .utf8)
        return try LocalCA(certificatePEM: certificate, keyPEM: key)
    }

    /// A server certificate for `names` and `addresses`, with a key of its own, valid from
    /// `notBefore` to `notAfter` (by default from a minute ago for 90 days; tests ask for
    /// expired ones).
    public func issue(
        names: [String], addresses: [IPAddress] = [], notBefore: Date = Date().addingTimeInterval(-60), notAfter: Date? = nil
    ) throws -> IssuedCertificate {
        guard !names.isEmpty || !addresses.isEmpty else { throw Failure(description: "a certificate needs a name or an address") }
        let leafKey = P256.Signing.PrivateKey()
        let leafPublic = Certificate.PrivateKey(leafKey).publicKey
        let subject = try DistinguishedName { CommonName(names.first ?? addresses[0].description) }
        let alternatives =
            names.map { GeneralName.dnsName($0) } + addresses.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: $0.bytes[...])) }
        let issued = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: leafPublic, notValidBefore: notBefore,
            notValidAfter: notAfter ?? notBefore.addingTimeInterval(90 * 86_400), issuer: certificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(alternatives)
                SubjectKeyIdentifier(hash: leafPublic)
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return IssuedCertificate(certificate: issued, keyPEM: leafKey.pemRepresentation)
    }
}

/// A certificate the local CA issued, with its private key.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    public let keyPEM: String

    public var certificatePEM: String {
        (try? certificate.serializeAsPEM().pemString) ?? ""
    }

    /// Writes NAME.pem and NAME-key.pem (the owner's only) into `folder`; their paths.
    @discardableResult
    public func write(to folder: URL, name: String) throws -> (certificate: URL, key: URL) {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificateURL = folder.appendingPathComponent("\(name).pem")
        let keyURL = folder.appendingPathComponent("\(name)-key.pem")
        try Data(certificatePEM.endingLine.utf8).write(to: certificateURL, options: .atomic)
        _ = FileManager.default.createFile(atPath: keyURL.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data(keyPEM.endingLine.utf8).write(to: keyURL)
        return (certificateURL, keyURL)
    }
}

extension String {
    /// Text files end their last line, so `cat cert.pem key.pem > both.pem` (as HAProxy wants) works.
    var endingLine: String { hasSuffix("\n") ? self : self + "\n" }
}
