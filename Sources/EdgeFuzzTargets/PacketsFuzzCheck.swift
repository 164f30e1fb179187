import EdgePcap

/// Frames of any link type edgesim decodes, given as bytes (a link-type byte, then frames each
/// with a 2-byte length and a flag byte), decoded and put together into flows and replay
/// schedules: nothing decoded is longer than its frame, and flows only hold bytes that were sent.
enum PacketsFuzzCheck {
    static let links: [LinkLayer] = [.ethernet, .linuxCooked, .linuxCooked2, .raw, .null, .loop]

    static func check(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let first = bytes.first else { return }
        let link = links[Int(first) % links.count]
        var decoder = PacketDecoder(link: link)
        var table = FlowTable(serverPorts: first & 0x80 != 0 ? [7, 53] : [], udpIdle: 1)
        var at = 1
        var record = 0
        var sent = 0
        while at + 3 <= bytes.count, record < 10_000 {
            let length = Int(bytes[at]) << 8 | Int(bytes[at + 1])
            let flags = bytes[at + 2]
            at += 3
            let frame = Array(bytes[at..<min(at + length, bytes.count)])
            at += frame.count
            record += 1
            // Bit 0: cut by a snap length; bits 1-7: seconds since the last frame, in tenths.
            let packet = CapturedPacket(
                timestamp: Double(record) + Double(flags >> 1) / 10, originalLength: frame.count + (flags & 1 == 1 ? 100 : 0), data: frame)
            if case .packet(let decoded) = decoder.decode(packet, record: record) {
                guard decoded.payload.count <= frame.count, decoded.missing >= 0, decoded.record == record else {
                    throw FuzzFinding("record \(record): \(decoded.payload.count) payload bytes from a \(frame.count)-byte frame")
                }
                sent += decoded.payload.count
                table.add(decoded)
            }
        }
        _ = decoder.finish()
        try checkFlows(table.finish(), payloadBytes: sent)
    }

    /// What every set of flows must hold, however it was captured.
    static func checkFlows(_ flows: [CapturedFlow], payloadBytes: Int) throws(FuzzFinding) {
        var delivered = 0
        for (index, flow) in flows.enumerated() {
            guard flow.packetsToServer + flow.packetsToClient >= 1 else { throw FuzzFinding("flow \(index + 1) has no packet") }
            var last: Double = -.infinity
            for message in flow.messages {
                guard message.time >= last else { throw FuzzFinding("flow \(index + 1): messages out of time order") }
                last = message.time
                if flow.transport == .tcp, message.bytes.isEmpty { throw FuzzFinding("flow \(index + 1): an empty TCP chunk") }
                delivered += message.bytes.count
            }
            let schedule = ReplaySchedule(flow, captureStart: flow.firstTime)
            guard schedule.sends.count == flow.sent.count else { throw FuzzFinding("flow \(index + 1): sends lost from the schedule") }
            var replies = 0
            for send in schedule.sends {
                guard send.afterReplies >= replies, send.afterReplies <= schedule.expectedReplies else {
                    throw FuzzFinding("flow \(index + 1): a send after \(send.afterReplies) of \(schedule.expectedReplies) replies")
                }
                replies = send.afterReplies
            }
        }
        // Reassembly delivers each byte once: never more than the packets carried.
        guard delivered <= payloadBytes else { throw FuzzFinding("flows hold \(delivered) bytes of \(payloadBytes) captured") }
    }
}
