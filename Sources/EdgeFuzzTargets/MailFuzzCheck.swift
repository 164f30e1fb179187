import EdgeModel
import EdgeProxy
import EdgeSim

/// What a mail client sends to the built-in smtp origin, and the Postfix log lines the runner
/// reads. Lines split the same however the bytes arrive; every reply the conversation gives is
/// one well-formed SMTP reply line; nothing is said after the origin closes; a log line yields
/// at most one address, and only one written in it.
enum MailFuzzCheck {
    /// One SMTP reply: lines joined by CRLF, each the same 2xx-5xx code, then `-` on every
    /// line but the last (a space or nothing there), no other CR or LF, at most 510 bytes a line.
    static func wellFormed(reply text: String) throws(FuzzFinding) {
        let lines = text.components(separatedBy: "\r\n")
        let code = Array(text.utf8.prefix(3))
        guard code.count == 3, code.allSatisfy({ (0x30...0x39).contains($0) }), (0x32...0x35).contains(code[0]) else {
            throw FuzzFinding("a reply without a 2xx-5xx code: \(text.prefix(80))")
        }
        for (index, line) in lines.enumerated() {
            let bytes = Array(line.utf8)
            guard Array(bytes.prefix(3)) == code else { throw FuzzFinding("a reply line with another code: \(line.prefix(80))") }
            let last = index == lines.count - 1
            let separator = bytes.count > 3 ? bytes[3] : nil
            guard last ? (separator == nil || separator == 0x20) : separator == 0x2D else {
                throw FuzzFinding("a reply line with the wrong separator: \(line.prefix(80))")
            }
            guard !bytes.contains(0x0A), !bytes.contains(0x0D) else { throw FuzzFinding("a reply line holds CR or LF") }
            guard bytes.count <= 510 else { throw FuzzFinding("a reply line of \(bytes.count) bytes") }
        }
    }

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        var whole = SMTPLineReader()
        let lines = whole.feed(bytes)
        let cuts = bytes.count <= 512 ? Array(0...bytes.count) : (0...64).map { $0 * bytes.count / 64 }
        for cut in cuts {
            var split = SMTPLineReader()
            let parts = split.feed(bytes[..<cut]) + split.feed(bytes[cut...])
            guard parts == lines else { throw FuzzFinding("lines differ when the bytes are split at \(cut)") }
        }
        for line in lines where line.text.utf8.count > SMTPServerStateMachine.maxLine {
            throw FuzzFinding("a line of \(line.text.utf8.count) bytes was kept")
        }

        // The conversation, with the reverse lookup answering after the first line (the
        // answer chosen by the input, so every kind is reached).
        var machine = SMTPServerStateMachine(hostname: "mx.example", policy: MailCheckPolicy(checks: [.ptr, .helo, .fcrdns]))
        var closed = false
        var actions = machine.connected(client: .v4(0xC612_0001), banner: "mx.example ESMTP")
        let answers: [ReverseDNS] = [
            .found(names: ["client.example"], confirmed: true), .found(names: ["client.example"], confirmed: false), .none,
            .failed("timeout"),
        ]
        let answer = answers[Int(bytes.first ?? 0) % answers.count]
        for (index, line) in lines.enumerated() {
            actions += machine.line(line.text, tooLong: line.tooLong)
            if index == 0 { actions += machine.reverseLookupFinished(answer) }
        }
        if lines.isEmpty { actions += machine.reverseLookupFinished(answer) }
        for action in actions {
            switch action {
            case .reply(let text):
                guard !closed else { throw FuzzFinding("a reply after the close: \(text)") }
                try wellFormed(reply: text)
            case .close:
                closed = true
            case .lookUp, .outcome:
                break
            }
        }

        // Postfix's log, one line at a time.
        let logLines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        for line in logLines {
            let log = PostfixLog(lines: [line])
            guard log.connections.count + log.outcomes.count <= 1 else { throw FuzzFinding("one log line gave several records") }
            for address in log.connections + log.outcomes.compactMap(\.client) where !line.contains("[") {
                throw FuzzFinding("an address (\(address)) from a line with no brackets")
            }
        }
    }
}
