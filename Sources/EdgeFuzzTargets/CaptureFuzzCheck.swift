import EdgePcap

/// A capture given as bytes, read through libpcap record by record: every packet respects its
/// header (captured length within the original length and the snap length), reading ends
/// with the file or a clear error, and the flows decoded from it hold together.
enum CaptureFuzzCheck {
    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let reader = try? PcapReader(bytes: bytes, name: "fuzz.pcap") else { return }
        var count = 0
        while count < 100_000 {
            let packet: CapturedPacket?
            do {
                packet = try reader.next()
            } catch {
                return
            }
            guard let packet else { break }
            count += 1
            guard packet.data.count <= packet.originalLength else {
                throw FuzzFinding("packet \(count): \(packet.data.count) bytes captured of \(packet.originalLength)")
            }
        }
        // The same bytes decoded whole, as a replay reads them.
        guard let capture = try? Capture(bytes: bytes, name: "fuzz.pcap") else { return }
        try PacketsFuzzCheck.checkFlows(capture.flows, payloadBytes: .max)
    }
}
