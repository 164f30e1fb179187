import EdgeModel

/// Groups decoded packets into flows: TCP connections (a new SYN on a finished 4-tuple starts a
/// new one) with both directions reassembled, and UDP conversations by 5-tuple, split after
/// `udpIdle` seconds of silence.
public struct FlowTable: Sendable {
    /// Ports that are known to be servers' (the applications' edge ports); they decide which
    /// side is the client when the capture holds no SYN.
    public var serverPorts: Set<UInt16>
    public var udpIdle: Double

    private struct Key: Hashable {
        var transport: DecodedPacket.Transport
        var low: Endpoint
        var high: Endpoint

        init(_ packet: DecodedPacket) {
            transport = packet.transport
            let ordered = [packet.source, packet.destination].sorted { ($0.address, $0.port) < ($1.address, $1.port) }
            low = ordered[0]
            high = ordered[1]
        }
    }

    private struct Building {
        var flow: CapturedFlow
        var toServer = TCPStreamAssembler()
        var toClient = TCPStreamAssembler()
        var clientSequence: UInt32?
        var finFromClient = false
        var finFromServer = false
    }

    private var finished: [Building] = []
    private var open: [Key: Building] = [:]

    public init(serverPorts: Set<UInt16> = [], udpIdle: Double = 60) {
        self.serverPorts = serverPorts
        self.udpIdle = udpIdle
    }

    public mutating func add(_ packet: DecodedPacket) {
        let key = Key(packet)
        if var building = open[key] {
            if startsAnew(building, packet) {
                finished.append(building)
                open[key] = nil
            } else {
                add(packet, to: &building)
                open[key] = building
                return
            }
        }
        var building = Building(flow: newFlow(packet))
        add(packet, to: &building)
        open[key] = building
    }

    /// Every flow, in the order it began, with its streams finished (holes reported).
    public mutating func finish() -> [CapturedFlow] {
        var all = finished + open.values
        open = [:]
        finished = []
        for index in all.indices { complete(&all[index]) }
        return all.map(\.flow).sorted { ($0.firstTime, $0.client.port) < ($1.firstTime, $1.client.port) }
    }

    private func startsAnew(_ building: Building, _ packet: DecodedPacket) -> Bool {
        switch packet.transport {
        case .udp:
            return packet.timestamp - building.flow.lastTime > udpIdle
        case .tcp:
            guard let tcp = packet.tcp, tcp.syn, !tcp.ack else { return false }
            if building.flow.ending != .open { return true }
            // A retransmitted SYN has the same sequence number; a new connection a new one.
            return building.clientSequence.map { $0 != tcp.sequence } ?? true
        }
    }

    private func newFlow(_ packet: DecodedPacket) -> CapturedFlow {
        var client = packet.source
        var server = packet.destination
        var reason = "it sent first"
        if let tcp = packet.tcp, tcp.syn {
            reason = tcp.ack ? "it was sent the SYN-ACK" : "it sent the SYN"
            if tcp.ack { swap(&client, &server) }
        } else if serverPorts.contains(packet.source.port) && !serverPorts.contains(packet.destination.port) {
            swap(&client, &server)
            reason = "port \(server.port) is an application's"
        } else if serverPorts.contains(packet.destination.port) {
            reason = "port \(server.port) is an application's"
        } else if packet.transport == .tcp {
            // No SYN: the side on the lower port is taken as the server.
            if packet.source.port < packet.destination.port { swap(&client, &server) }
            reason = "no SYN seen; the lower port taken as the server's"
        }
        return CapturedFlow(
            transport: packet.transport, client: client, server: server, firstTime: packet.timestamp, lastTime: packet.timestamp,
            clientFrom: reason)
    }

    private func add(_ packet: DecodedPacket, to building: inout Building) {
        let toServer = packet.source == building.flow.client
        // Capture clocks may step back (pcapng with several interfaces, a clock adjusted while
        // capturing): a flow's times never do, so its replay schedule only moves forward.
        var packet = packet
        packet.timestamp = max(packet.timestamp, building.flow.lastTime)
        building.flow.lastTime = packet.timestamp
        if toServer { building.flow.packetsToServer += 1 } else { building.flow.packetsToClient += 1 }
        if packet.missing > 0 {
            building.flow.gaps.append(
                "record \(packet.record): \(packet.missing) bytes \(toServer ? "to the server" : "to the client") not captured (snap length)"
            )
        }
        guard let tcp = packet.tcp else {
            building.flow.messages.append(
                CapturedFlow.Message(
                    direction: toServer ? .toServer : .toClient, time: packet.timestamp, record: packet.record, bytes: packet.payload))
            return
        }
        if tcp.syn {
            if toServer {
                building.clientSequence = tcp.sequence
                building.toServer.syn(sequence: tcp.sequence)
            } else {
                building.toClient.syn(sequence: tcp.sequence)
            }
        }
        if toServer {
            building.toServer.segment(sequence: tcp.sequence, bytes: packet.payload, time: packet.timestamp, record: packet.record)
        } else {
            building.toClient.segment(sequence: tcp.sequence, bytes: packet.payload, time: packet.timestamp, record: packet.record)
        }
        if tcp.rst { building.flow.ending = .reset }
        if tcp.fin {
            if toServer { building.finFromClient = true } else { building.finFromServer = true }
            if building.finFromClient, building.finFromServer, building.flow.ending == .open { building.flow.ending = .closed }
        }
    }

    private func complete(_ building: inout Building) {
        guard building.flow.transport == .tcp else { return }
        building.toServer.finish()
        building.toClient.finish()
        var flow = building.flow
        flow.startedBeforeCapture = building.toServer.startedMidStream || building.toClient.startedMidStream
        flow.retransmissions = building.toServer.retransmitted + building.toClient.retransmitted
        for (name, stream) in [("to the server", building.toServer), ("to the client", building.toClient)] {
            for gap in stream.gaps { flow.gaps.append("\(gap.size) bytes \(name) missing at offset \(gap.offset)") }
        }
        // Each direction is in stream order already (its times never go back); the two are
        // merged by time, the client's first on a tie.
        let sent = building.toServer.chunks
        let received = building.toClient.chunks
        var merged: [CapturedFlow.Message] = []
        merged.reserveCapacity(sent.count + received.count)
        var i = 0
        var j = 0
        while i < sent.count || j < received.count {
            if j == received.count || (i < sent.count && sent[i].time <= received[j].time) {
                merged.append(CapturedFlow.Message(direction: .toServer, time: sent[i].time, record: sent[i].record, bytes: sent[i].bytes))
                i += 1
            } else {
                merged.append(
                    CapturedFlow.Message(direction: .toClient, time: received[j].time, record: received[j].record, bytes: received[j].bytes)
                )
                j += 1
            }
        }
        flow.messages = merged
        building.flow = flow
    }
}
