import Crypto
import Foundation

/// How a runner shows a node host elsewhere that it holds the shared token without sending it,
/// and how the fleet's certificate files cross the control connection unread.
///
/// The host opens each connection with a fresh random challenge. The runner's hello carries an
/// HMAC-SHA256, keyed by the token, of that challenge and the fleet's fingerprint: it proves the
/// token for this connection only, so a hello seen on the network cannot be used again; the
/// hello also carries a challenge of the runner's, which the host's reply answers the same way,
/// so the runner knows it reached a holder of the token. The
/// certificate files (keys among them) travel sealed with ChaCha20-Poly1305 under a key derived
/// from the token and the challenge (HKDF-SHA256): only a holder of the token reads them, and a
/// changed byte is refused.
public enum NodeHostHandshake {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// 32 random bytes, as hex.
    public static func challenge() -> String {
        hex(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// The hello's proof of `token` for `challenge`, bound to the runner's fleet.
    public static func proof(token: String, challenge: String, fleet: String) -> String {
        hex(Array(HMAC<SHA256>.authenticationCode(for: message(challenge, fleet), using: key(token))))
    }

    /// Whether `proof` is the one `token` gives for `challenge` and `fleet` (compared in constant time).
    public static func verify(_ proof: String, token: String, challenge: String, fleet: String) -> Bool {
        guard let code = bytes(hex: proof) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: message(challenge, fleet), using: key(token))
    }

    /// The host's answer to the runner's own challenge, given with its reply to the hello: the
    /// runner knows it reached a holder of the token, not something that only listens there.
    public static func answer(token: String, runnerChallenge: String, challenge: String) -> String {
        hex(Array(HMAC<SHA256>.authenticationCode(for: answerMessage(runnerChallenge, challenge), using: key(token))))
    }

    public static func verifyAnswer(_ answer: String, token: String, runnerChallenge: String, challenge: String) -> Bool {
        guard let code = bytes(hex: answer) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: answerMessage(runnerChallenge, challenge), using: key(token))
    }

    /// `files` as base64 of ChaCha20-Poly1305's combined form (nonce, ciphertext, tag).
    public static func seal(_ files: [String: String], token: String, challenge: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try ChaChaPoly.seal(encoder.encode(files), using: filesKey(token, challenge)).combined.base64EncodedString()
    }

    /// The files `sealed` holds; throws when it was not sealed with this token for this challenge,
    /// or was changed on the way.
    public static func open(_ sealed: String, token: String, challenge: String) throws -> [String: String] {
        guard let data = Data(base64Encoded: sealed), let box = try? ChaChaPoly.SealedBox(combined: data),
            let plain = try? ChaChaPoly.open(box, using: filesKey(token, challenge)),
            let files = try? JSONDecoder().decode([String: String].self, from: plain)
        else {
            throw Failure(
                description: "the certificate files cannot be opened with this host's token (another token, or changed on the way)")
        }
        return files
    }

    private static func key(_ token: String) -> SymmetricKey { SymmetricKey(data: Data(token.utf8)) }

    private static func message(_ challenge: String, _ fleet: String) -> Data { Data("edgesim hello\n\(challenge)\n\(fleet)".utf8) }

    private static func answerMessage(_ runnerChallenge: String, _ challenge: String) -> Data {
        Data("edgesim host\n\(runnerChallenge)\n\(challenge)".utf8)
    }

    private static func filesKey(_ token: String, _ challenge: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key(token), salt: Data(challenge.utf8), info: Data("edgesim certificate files".utf8), outputByteCount: 32)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
