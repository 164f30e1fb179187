import CPcap
import EdgeModel
import Foundation

/// A capture written from what a relay carried rather than from packets on a wire (loopback
/// mode, where the fabric carries streams): each TCP connection becomes a handshake, data
/// segments with consistent sequence numbers and FINs; each UDP datagram one packet; raw IPv4
/// in pcapng, so Wireshark and edgesim's replay read it like any other capture.
public final class SyntheticCapture: @unchecked Sendable {
    public let file: String
    private let lock = NSLock()
    private let writer: PcapngWriter
    private let dead: OpaquePointer
    private var program: bpf_program?
    private var stopped = false
    private var identification: UInt16 = 0

    public init(file: String, filter: String?, limit: Int = 256 << 20) throws(PcapError) {
        self.file = file
        // DLT_RAW: libpcap names raw IP 12 here (101 is its number in files).
        guard let dead = pcap_open_dead(12, 65_535) else { throw PcapError(file: file, message: "libpcap cannot compile filters") }
        self.dead = dead
        if let filter {
            var program = bpf_program()
            guard pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let reason = String(cString: pcap_geterr(dead))
                pcap_close(dead)
                throw PcapError(file: file, message: "filter '\(filter)' is not a valid capture filter: \(reason)")
            }
            self.program = program
        }
        do {
            writer = try PcapngWriter(path: file, linkType: 101, interface: "edgesim fabric", limit: limit)
        } catch {
            if program != nil { pcap_freecode(&program!) }
            pcap_close(dead)
            throw PcapError(file: file, message: error.description)
        }
    }

    deinit {
        if program != nil { pcap_freecode(&program!) }
        pcap_close(dead)
    }

    /// A TCP connection from `client` to `server`, its handshake written now.
    public func tcp(client: Endpoint, server: Endpoint) -> SyntheticConnection {
        let connection = SyntheticConnection(capture: self, client: client, server: server)
        connection.open()
        return connection
    }

    public func udp(from source: Endpoint, to destination: Endpoint, payload: some Collection<UInt8>) {
        var segment =
            PacketBytes.u16(source.port) + PacketBytes.u16(destination.port) + PacketBytes.u16(UInt16(8 + payload.count)) + [0, 0]
        segment += payload
        write(proto: 17, from: source.address, to: destination.address, segment: segment)
    }

    /// Stops writing and flushes the file; what was written.
    public func stop() -> LiveCapture.Summary {
        lock.withLock {
            stopped = true
            writer.flush()
            return LiveCapture.Summary(file: file, packets: writer.packets, bytes: writer.bytes, dropped: 0, overLimit: writer.overLimit)
        }
    }

    func write(proto: UInt8, from source: IPAddress, to destination: IPAddress, segment: [UInt8]) {
        guard source.isIPv4, destination.isIPv4 else { return }
        lock.withLock {
            guard !stopped else { return }
            identification &+= 1
            var packet: [UInt8] = [0x45, 0] + PacketBytes.u16(UInt16(clamping: 20 + segment.count)) + PacketBytes.u16(identification)
            packet += [0x40, 0, 64, proto, 0, 0] + source.bytes + destination.bytes
            let headerSum = PacketBytes.checksum(packet[0..<20])
            packet[10] = UInt8(headerSum >> 8)
            packet[11] = UInt8(headerSum & 0xff)
            var body = segment
            // The transport checksum over the pseudo-header, as a stack would compute it.
            let pseudo = source.bytes + destination.bytes + [0, proto] + PacketBytes.u16(UInt16(clamping: segment.count))
            let offset = proto == 6 ? 16 : 6
            let sum = PacketBytes.checksum(pseudo + body)
            body[offset] = UInt8(sum >> 8)
            body[offset + 1] = UInt8(sum & 0xff)
            packet += body
            if program != nil {
                var header = pcap_pkthdr()
                header.caplen = UInt32(packet.count)
                header.len = UInt32(packet.count)
                let matches = packet.withUnsafeBufferPointer { pcap_offline_filter(&program!, &header, $0.baseAddress) }
                guard matches != 0 else { return }
            }
            let now = Date().timeIntervalSince1970
            writer.write(nanoseconds: UInt64(now * 1e9), packet: packet)
        }
    }
}

/// One TCP connection of a synthetic capture: sequence numbers kept per direction.
public final class SyntheticConnection: @unchecked Sendable {
    private unowned let capture: SyntheticCapture
    private let client: Endpoint
    private let server: Endpoint
    private let lock = NSLock()
    private var clientNext: UInt32 = 1_000
    private var serverNext: UInt32 = 500_000
    private var finished = (client: false, server: false)
    /// The largest payload a synthetic segment carries (the IPv4 length field's limit, less headers).
    static let maxSegment = 65_000

    init(capture: SyntheticCapture, client: Endpoint, server: Endpoint) {
        self.capture = capture
        self.client = client
        self.server = server
    }

    func open() {
        lock.withLock {
            segment(fromClient: true, flags: 0x02, payload: [])
            clientNext &+= 1
            segment(fromClient: false, flags: 0x12, payload: [])
            serverNext &+= 1
            segment(fromClient: true, flags: 0x10, payload: [])
        }
    }

    /// Bytes one side sent.
    public func data(fromClient: Bool, _ bytes: some Collection<UInt8>) {
        lock.withLock {
            var rest = Array(bytes)[...]
            while !rest.isEmpty {
                let piece = rest.prefix(Self.maxSegment)
                rest = rest.dropFirst(piece.count)
                segment(fromClient: fromClient, flags: 0x18, payload: Array(piece))
                if fromClient { clientNext &+= UInt32(piece.count) } else { serverNext &+= UInt32(piece.count) }
            }
        }
    }

    /// One side ended its output.
    public func end(fromClient: Bool) {
        lock.withLock {
            guard fromClient ? !finished.client : !finished.server else { return }
            if fromClient { finished.client = true } else { finished.server = true }
            segment(fromClient: fromClient, flags: 0x11, payload: [])
            if fromClient { clientNext &+= 1 } else { serverNext &+= 1 }
        }
    }

    private func segment(fromClient: Bool, flags: UInt8, payload: [UInt8]) {
        let (from, to) = fromClient ? (client, server) : (server, client)
        let sequence = fromClient ? clientNext : serverNext
        let ack = flags == 0x02 ? 0 : (fromClient ? serverNext : clientNext)
        let header =
            PacketBytes.u16(from.port) + PacketBytes.u16(to.port) + PacketBytes.u32(sequence) + PacketBytes.u32(ack)
            + [0x50, flags] + PacketBytes.u16(65_535) + [0, 0, 0, 0]
        capture.write(proto: 6, from: from.address, to: to.address, segment: header + payload)
    }
}

enum PacketBytes {
    static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func u32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    /// The Internet checksum (RFC 1071).
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var high = true
        for byte in bytes {
            sum += high ? UInt32(byte) << 8 : UInt32(byte)
            high.toggle()
        }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
