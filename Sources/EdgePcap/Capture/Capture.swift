/// A capture file read whole: its flows, what was skipped, and every problem with a record
/// number. Built from a path or from bytes (so the whole chain can be fuzzed).
public struct Capture: Sendable {
    public var file: String
    public var linkTypeName: String
    /// The link type in words ("Linux cooked v2") and the file format (pcap or pcapng).
    public var linkTypeDescription: String
    public var format: String
    public var records = 0
    public var flows: [CapturedFlow] = []
    /// Records that are not TCP or UDP over IP, by what they are.
    public var skipped: [String: Int] = [:]
    /// Records that contradict their headers, fragments never whole, streams with holes.
    public var problems: [String] = []
    public var firstTime: Double?
    public var lastTime: Double?

    /// The most records a capture may hold, and the most payload bytes, for replay and inspection.
    public static let maxRecords = 2_000_000
    public static let maxPayloadBytes = 512 << 20

    public struct Options: Sendable {
        /// Edge ports of the applications, to tell client from server when no SYN was captured.
        public var serverPorts: Set<UInt16>
        /// Silence after which a UDP conversation on the same 5-tuple counts as a new flow.
        public var udpIdle: Double
        /// A libpcap filter expression (`host 198.18.10.1 and port 53`): only matching records count.
        public var filter: String?

        public init(serverPorts: Set<UInt16> = [], udpIdle: Double = 60, filter: String? = nil) {
            self.serverPorts = serverPorts
            self.udpIdle = udpIdle
            self.filter = filter
        }
    }

    public init(file: String, options: Options = .init()) throws(PcapError) {
        try self.init(reader: PcapReader(file: file, filter: options.filter), options: options)
    }

    public init(bytes: [UInt8], name: String, options: Options = .init()) throws(PcapError) {
        try self.init(reader: PcapReader(bytes: bytes, name: name, filter: options.filter), options: options)
    }

    public init(reader: PcapReader, options: Options) throws(PcapError) {
        file = reader.file
        linkTypeName = reader.linkTypeName
        linkTypeDescription = reader.linkTypeDescription
        format = reader.format
        guard let link = LinkLayer(dlt: reader.linkType) else {
            throw PcapError(
                file: reader.file,
                message:
                    "link type \(reader.linkTypeName) (\(reader.linkType)) is not one edgesim decodes; it reads \(LinkLayer.supportedNames)"
            )
        }
        var decoder = PacketDecoder(link: link)
        var table = FlowTable(serverPorts: options.serverPorts, udpIdle: options.udpIdle)
        var payload = 0
        while let packet = try reader.next() {
            records += 1
            let record = reader.recordNumber
            guard records <= Self.maxRecords else {
                throw PcapError(file: file, message: "more than \(Self.maxRecords) records: too large to replay or inspect")
            }
            firstTime = min(firstTime ?? packet.timestamp, packet.timestamp)
            lastTime = max(lastTime ?? packet.timestamp, packet.timestamp)
            switch decoder.decode(packet, record: record) {
            case .packet(let decoded):
                payload += decoded.payload.count
                guard payload <= Self.maxPayloadBytes else {
                    throw PcapError(
                        file: file, message: "more than \(Self.maxPayloadBytes >> 20) MiB of payload: too large to replay or inspect")
                }
                table.add(decoded)
            case .fragment: break
            case .skipped(let what): skipped[what, default: 0] += 1
            case .malformed(let why): problems.append(why)
            }
        }
        problems += decoder.finish()
        flows = table.finish()
        for flow in flows {
            for gap in flow.gaps { problems.append("\(flow.transport) \(flow.client) → \(flow.server): \(gap)") }
        }
    }
}
