import Foundation
import Testing

@testable import EdgeSim

/// A runner proves the token for one connection's challenge only, the host answers the
/// runner's challenge likewise, and the certificate files the runner seals open only with that
/// token and challenge, unchanged.
@Suite struct NodeHostHandshakeTests {
    let files = ["ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n", "secure-key.pem": "-----BEGIN PRIVATE KEY-----\nMC4C\n"]

    @Test func challengesAreFreshRandomHex() {
        let challenges = (0..<50).map { _ in NodeHostHandshake.challenge() }
        #expect(Set(challenges).count == 50)
        #expect(challenges.allSatisfy { $0.count == 64 && NodeHostHandshake.bytes(hex: $0)?.count == 32 })
    }

    @Test func aProofHoldsForItsTokenChallengeAndFleetOnly() {
        let challenge = NodeHostHandshake.challenge()
        let proof = NodeHostHandshake.proof(token: "s3cret", challenge: challenge, fleet: "f1")
        #expect(!proof.contains("s3cret"))
        #expect(NodeHostHandshake.verify(proof, token: "s3cret", challenge: challenge, fleet: "f1"))
        #expect(!NodeHostHandshake.verify(proof, token: "s3creT", challenge: challenge, fleet: "f1"))
        // A hello seen on the network does not answer the next connection's challenge.
        #expect(!NodeHostHandshake.verify(proof, token: "s3cret", challenge: NodeHostHandshake.challenge(), fleet: "f1"))
        #expect(!NodeHostHandshake.verify(proof, token: "s3cret", challenge: challenge, fleet: "f2"))
        for bad in ["", "zz", String(proof.dropLast()), String(proof.dropLast(2)), proof.uppercased() + "00"] {
            #expect(!NodeHostHandshake.verify(bad, token: "s3cret", challenge: challenge, fleet: "f1"), "\(bad)")
        }
    }

    @Test func theHostsAnswerHoldsForBothChallengesAndTheTokenOnly() {
        let (theirs, ours) = (NodeHostHandshake.challenge(), NodeHostHandshake.challenge())
        let answer = NodeHostHandshake.answer(token: "s3cret", runnerChallenge: theirs, challenge: ours)
        #expect(NodeHostHandshake.verifyAnswer(answer, token: "s3cret", runnerChallenge: theirs, challenge: ours))
        #expect(!NodeHostHandshake.verifyAnswer(answer, token: "guess", runnerChallenge: theirs, challenge: ours))
        #expect(!NodeHostHandshake.verifyAnswer(answer, token: "s3cret", runnerChallenge: ours, challenge: theirs))
        #expect(!NodeHostHandshake.verifyAnswer(answer, token: "s3cret", runnerChallenge: NodeHostHandshake.challenge(), challenge: ours))
        // The runner's proof is no answer: the two are keyed to different messages.
        let proof = NodeHostHandshake.proof(token: "s3cret", challenge: ours, fleet: theirs)
        #expect(!NodeHostHandshake.verifyAnswer(proof, token: "s3cret", runnerChallenge: theirs, challenge: ours))
    }

    @Test func sealedFilesOpenWithTheTokenAndChallengeOnlyAndUnchanged() throws {
        let challenge = NodeHostHandshake.challenge()
        let sealed = try NodeHostHandshake.seal(files, token: "s3cret", challenge: challenge)
        #expect(!sealed.contains("BEGIN") && !sealed.contains("MC4C"))
        #expect(try NodeHostHandshake.open(sealed, token: "s3cret", challenge: challenge) == files)
        // Each seal has a nonce of its own.
        #expect(try NodeHostHandshake.seal(files, token: "s3cret", challenge: challenge) != sealed)

        #expect(throws: NodeHostHandshake.Failure.self) { try NodeHostHandshake.open(sealed, token: "guess", challenge: challenge) }
        #expect(throws: NodeHostHandshake.Failure.self) {
            try NodeHostHandshake.open(sealed, token: "s3cret", challenge: NodeHostHandshake.challenge())
        }
        var bytes = try #require(Data(base64Encoded: sealed))
        bytes[bytes.count / 2] ^= 0x01
        #expect(throws: NodeHostHandshake.Failure.self) {
            try NodeHostHandshake.open(bytes.base64EncodedString(), token: "s3cret", challenge: challenge)
        }
        for junk in ["", "not base64", Data(repeating: 0, count: 8).base64EncodedString()] {
            #expect(throws: NodeHostHandshake.Failure.self) { try NodeHostHandshake.open(junk, token: "s3cret", challenge: challenge) }
        }
    }
}
