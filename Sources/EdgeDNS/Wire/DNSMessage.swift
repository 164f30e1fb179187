import EdgeModel

/// Record types edgesim reads and writes by name; others are carried as numbers.
public struct DNSType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSType(rawValue: 1)
    public static let ns = DNSType(rawValue: 2)
    public static let cname = DNSType(rawValue: 5)
    public static let soa = DNSType(rawValue: 6)
    public static let ptr = DNSType(rawValue: 12)
    public static let mx = DNSType(rawValue: 15)
    public static let txt = DNSType(rawValue: 16)
    public static let aaaa = DNSType(rawValue: 28)
    public static let srv = DNSType(rawValue: 33)
    public static let opt = DNSType(rawValue: 41)
    public static let any = DNSType(rawValue: 255)

    public var description: String {
        switch self {
        case .a: return "A"
        case .ns: return "NS"
        case .cname: return "CNAME"
        case .soa: return "SOA"
        case .ptr: return "PTR"
        case .mx: return "MX"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        case .srv: return "SRV"
        case .opt: return "OPT"
        case .any: return "ANY"
        default: return "TYPE\(rawValue)"
        }
    }
}

public enum DNSResponseCode: UInt8, Sendable, Hashable {
    case noError = 0
    case formatError = 1
    case serverFailure = 2
    case nameError = 3
    case notImplemented = 4
    case refused = 5
}

public struct DNSQuestion: Sendable, Hashable {
    public var name: DNSName
    public var type: DNSType
    /// 1 (IN) for everything edgesim serves.
    public var recordClass: UInt16

    public init(name: DNSName, type: DNSType, recordClass: UInt16 = 1) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

public struct SOAData: Sendable, Hashable {
    public var primary: DNSName
    public var mailbox: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// The negative-caching TTL (RFC 2308).
    public var minimum: UInt32

    public init(
        primary: DNSName, mailbox: DNSName, serial: UInt32, refresh: UInt32 = 3600, retry: UInt32 = 600, expire: UInt32 = 86400,
        minimum: UInt32 = 30
    ) {
        self.primary = primary
        self.mailbox = mailbox
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

public enum RecordData: Sendable, Hashable {
    case a(IPAddress)
    case aaaa(IPAddress)
    case cname(DNSName)
    case ns(DNSName)
    case ptr(DNSName)
    case soa(SOAData)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    /// Any other type, as its raw bytes.
    case other([UInt8])
}

public struct DNSRecord: Sendable, Hashable {
    public var name: DNSName
    public var type: DNSType
    public var recordClass: UInt16
    public var ttl: UInt32
    public var data: RecordData

    public init(name: DNSName, ttl: UInt32, data: RecordData) {
        self.name = name
        self.ttl = ttl
        self.data = data
        recordClass = 1
        switch data {
        case .a: type = .a
        case .aaaa: type = .aaaa
        case .cname: type = .cname
        case .ns: type = .ns
        case .ptr: type = .ptr
        case .soa: type = .soa
        case .srv: type = .srv
        case .other: type = DNSType(rawValue: 0)
        }
    }

    public init(name: DNSName, type: DNSType, recordClass: UInt16, ttl: UInt32, data: RecordData) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }
}

/// The EDNS(0) OPT pseudo-record's meaning.
public struct EDNS: Sendable, Hashable {
    /// The largest UDP payload the sender can take.
    public var udpPayloadSize: UInt16
    public var version: UInt8
    public var dnssecOK: Bool

    public init(udpPayloadSize: UInt16 = 1232, version: UInt8 = 0, dnssecOK: Bool = false) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
    }
}

public struct DNSMessage: Sendable, Hashable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var authoritative: Bool
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var responseCode: DNSResponseCode
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    /// Additional records other than OPT.
    public var additionals: [DNSRecord]
    public var edns: EDNS?

    public init(
        id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false, truncated: Bool = false,
        recursionDesired: Bool = false, recursionAvailable: Bool = false, responseCode: DNSResponseCode = .noError,
        questions: [DNSQuestion] = [], answers: [DNSRecord] = [], authorities: [DNSRecord] = [], additionals: [DNSRecord] = [],
        edns: EDNS? = nil
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.responseCode = responseCode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    public static func query(id: UInt16, name: DNSName, type: DNSType, recursionDesired: Bool = true, edns: EDNS? = EDNS()) -> DNSMessage {
        DNSMessage(id: id, recursionDesired: recursionDesired, questions: [DNSQuestion(name: name, type: type)], edns: edns)
    }
}

/// A message that breaks the wire format; `id` is known when the header could be read.
public struct DNSWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var id: UInt16?

    public init(_ message: String, id: UInt16? = nil) {
        self.message = message
        self.id = id
    }

    public var description: String { message }
}
