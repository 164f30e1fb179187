import Foundation

/// How an application's edge TLS is set up, beyond its `tls` mode. Every field has a default:
/// with none given, the edge presents a certificate issued by the fleet's local CA for the
/// application's name, accepts TLS 1.1 and later, and in strict mode trusts that same CA.
public struct EdgeTLSSettings: Sendable, Hashable {
    /// PEM certificate (chain) the edge presents (`tls_certificate`); absolute path.
    public var certificateFile: String?
    /// PEM private key of that certificate (`tls_key`); absolute path.
    public var keyFile: String?
    /// Lowest TLS version the edge accepts from clients (`min_tls_version`). Default 1.1.
    public var minimumVersion: TLSVersionSetting = .v1_1
    /// Cipher suites (OpenSSL names) the edge accepts for TLS 1.2 and older (`tls_ciphers`), in
    /// order of preference; nil keeps the TLS library's own list.
    public var ciphers: [String]?
    /// PEM bundle of CAs that a strict-mode origin certificate must chain to (`origin_ca`);
    /// nil is the fleet's local CA.
    public var originCAFile: String?
    /// The name an origin's certificate must carry, also sent as SNI (`origin_server_name`);
    /// nil is the client's SNI, else the `origin_dns` name, else the origin's address.
    public var originServerName: String?

    public init() {}

    /// Whether the edge needs a certificate issued for the application.
    public var needsIssuedCertificate: Bool { certificateFile == nil }
}

/// `min_tls_version`: what Spectrum's edge accepts can be narrowed, not widened.
public enum TLSVersionSetting: String, Sendable, Hashable, CaseIterable {
    case v1_1 = "1.1"
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// The TLS 1.2-and-older cipher suites edgesim can offer or accept, by OpenSSL name, with their
/// IANA numbers. A name outside this list is refused when the file is read, before any TLS
/// library sees it.
public enum TLSCipherSuites {
    public static let byName: KeyValuePairs<String, UInt16> = [
        "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
        "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
        "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
        "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
        "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
        "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
        "ECDHE-ECDSA-AES128-SHA": 0xC009,
        "ECDHE-RSA-AES128-SHA": 0xC013,
        "ECDHE-ECDSA-AES256-SHA": 0xC00A,
        "ECDHE-RSA-AES256-SHA": 0xC014,
        "AES128-GCM-SHA256": 0x009C,
        "AES256-GCM-SHA384": 0x009D,
        "AES128-SHA": 0x002F,
        "AES256-SHA": 0x0035,
    ]

    public static func code(_ name: String) -> UInt16? {
        byName.first { $0.key == name }?.value
    }

    /// What the edge offers an origin for TLS 1.2 and older, first preferred (the reference's
    /// order; TLS 1.3 suites come first, in the TLS library's fixed order AES128-GCM,
    /// AES256-GCM, CHACHA20-POLY1305).
    public static let towardsOrigin = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256", "AES128-SHA",
        "AES256-SHA",
    ]
}
