import EdgeModel

/// How one mail transaction ended at the origin.
public struct MailOutcome: Sendable, Hashable {
    /// The address the checks were made on (the PROXY header's source, else the peer).
    public var client: IPAddress?
    public var helo: String?
    /// The reply that ended the transaction: `250 ...` after DATA, or the refusal.
    public var reply: String
    /// The check that refused it; nil when the message was taken.
    public var refusedBy: MailCheck?

    public var accepted: Bool { reply.hasPrefix("2") }

    public init(client: IPAddress?, helo: String?, reply: String, refusedBy: MailCheck?) {
        self.client = client
        self.helo = helo
        self.reply = reply
        self.refusedBy = refusedBy
    }
}

/// The SMTP conversation of the built-in mail origin (RFC 5321, the parts a test needs): a
/// greeting, HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, in order, one reply per command.
/// Client checks are answered at RCPT, as MTAs that delay rejection do; a RCPT that arrives
/// before the reverse lookup finished waits for it, and so does everything sent after it.
public struct SMTPServerStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case reply(String)
        /// Look up the reverse DNS of this address, then call `reverseLookupFinished`.
        case lookUp(IPAddress)
        case outcome(MailOutcome)
        /// Flush and close (after QUIT, or a line too long).
        case close
    }

    private enum Stage {
        case greeting
        case command
        case data(bytes: Int)
        case closed
    }

    public static let maxLine = 1000
    public static let maxMessage = 10 * 1024 * 1024
    /// Lines a client may send ahead while a reply waits for the reverse lookup.
    public static let maxHeldLines = 100

    let hostname: String
    let policy: MailCheckPolicy
    private var stage: Stage = .greeting
    private(set) var client: IPAddress?
    private var helo: String?
    private var sender: String?
    private var recipients = 0
    /// The reverse lookup's answer once it came; nil while it runs or when there are no checks.
    private var reverse: ReverseDNS?
    private var lookupStarted = false
    /// Lines that arrived while a RCPT waited for the lookup.
    private var held: [String] = []
    private var waiting = false
    /// A reply waits for the reverse lookup.
    public var isWaiting: Bool { waiting }
    private var queued = 0

    public init(hostname: String, policy: MailCheckPolicy) {
        self.hostname = hostname
        self.policy = policy
    }

    /// The connection is open and its client address known.
    public mutating func connected(client: IPAddress?, banner: String) -> [Action] {
        self.client = client
        stage = .command
        var actions: [Action] = [.reply("220 \(banner)")]
        if !policy.checks.isEmpty, let client {
            lookupStarted = true
            actions.append(.lookUp(client))
        }
        return actions
    }

    public mutating func reverseLookupFinished(_ answer: ReverseDNS) -> [Action] {
        reverse = answer
        guard waiting else { return [] }
        waiting = false
        var actions = recipient()
        let lines = held
        held = []
        for line in lines { actions += self.line(line) }
        return actions
    }

    /// One line without its CRLF; `tooLong` when the client sent more than `maxLine` bytes.
    public mutating func line(_ text: String, tooLong: Bool = false) -> [Action] {
        if waiting {
            guard held.count < Self.maxHeldLines else {
                // A client pipelining without end while the lookup runs: stop taking lines.
                waiting = false
                held = []
                stage = .closed
                return [.reply("421 4.7.0 \(hostname) too many commands before a reply"), .close]
            }
            held.append(text)
            return []
        }
        switch stage {
        case .greeting, .closed:
            return []
        case .data(let bytes):
            if text == "." {
                stage = .command
                guard bytes <= Self.maxMessage else {
                    return finish("552 5.3.4 message too big (\(bytes) bytes; at most \(Self.maxMessage))", refusedBy: nil)
                }
                queued += 1
                return finish("250 2.0.0 Ok: queued as \(hostname.prefix(8))-\(queued)", refusedBy: nil)
            }
            stage = .data(bytes: bytes + text.utf8.count + 2)
            return []
        case .command:
            if tooLong {
                stage = .closed
                return [.reply("500 5.5.0 line too long"), .close]
            }
            return command(text)
        }
    }

    private mutating func command(_ text: String) -> [Action] {
        let verb = text.prefix { $0 != " " }.uppercased()
        let argument = text.dropFirst(verb.count).trimmingCharacters(inSet: " ")
        switch verb {
        case "HELO", "EHLO":
            guard !argument.isEmpty else { return [.reply("501 5.5.4 \(verb) needs a name")] }
            helo = argument
            resetTransaction()
            return [.reply(verb == "EHLO" ? "250-\(hostname)\r\n250-SIZE \(Self.maxMessage)\r\n250 8BITMIME" : "250 \(hostname)")]
        case "MAIL":
            guard helo != nil else { return [.reply("503 5.5.1 send HELO or EHLO first")] }
            guard sender == nil else { return [.reply("503 5.5.1 nested MAIL command")] }
            guard argument.uppercased().hasPrefix("FROM:") else { return [.reply("501 5.5.4 syntax: MAIL FROM:<address>")] }
            sender = String(argument.dropFirst(5))
            return [.reply("250 2.1.0 Ok")]
        case "RCPT":
            guard sender != nil else { return [.reply("503 5.5.1 need MAIL before RCPT")] }
            guard argument.uppercased().hasPrefix("TO:") else { return [.reply("501 5.5.4 syntax: RCPT TO:<address>")] }
            if lookupStarted, reverse == nil {
                waiting = true
                return []
            }
            return recipient()
        case "DATA":
            guard sender != nil, recipients > 0 else { return [.reply("503 5.5.1 need RCPT before DATA")] }
            stage = .data(bytes: 0)
            return [.reply("354 End data with <CR><LF>.<CR><LF>")]
        case "RSET":
            resetTransaction()
            return [.reply("250 2.0.0 Ok")]
        case "NOOP":
            return [.reply("250 2.0.0 Ok")]
        case "QUIT":
            stage = .closed
            return [.reply("221 2.0.0 Bye"), .close]
        default:
            return [.reply("502 5.5.2 command not recognized")]
        }
    }

    /// The answer to RCPT: the checks decide.
    private mutating func recipient() -> [Action] {
        if let client, let refusal = policy.refusal(client: client, reverse: reverse ?? .none, helo: helo) {
            let actions = finish(refusal.reply, refusedBy: refusal.check)
            return actions
        }
        recipients += 1
        return [.reply("250 2.1.5 Ok")]
    }

    private mutating func finish(_ reply: String, refusedBy: MailCheck?) -> [Action] {
        let outcome = MailOutcome(client: client, helo: helo, reply: reply, refusedBy: refusedBy)
        // A refused RCPT leaves the transaction open for other recipients; a finished message ends it.
        if refusedBy == nil { resetTransaction() }
        return [.reply(reply), .outcome(outcome)]
    }

    private mutating func resetTransaction() {
        sender = nil
        recipients = 0
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(inSet character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text = text.dropFirst() }
        while text.last == character { text = text.dropLast() }
        return String(text)
    }
}
