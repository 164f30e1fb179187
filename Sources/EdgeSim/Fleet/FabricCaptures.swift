import EdgeModel
import EdgeNet
import EdgePcap
import NIOCore
import Synchronization

/// The loopback fabric's captures: for each relayed connection or flow, the leg that crosses a
/// captured host (the client's own leg for a client; the fabric's leg for the host it reaches)
/// written as packets.
final class FabricCaptures: FabricTap {
    private let captures = Mutex<[(host: String, capture: SyntheticCapture)]>([])

    /// Returns the tap for the fabric.
    func add(host: String, _ capture: SyntheticCapture) -> FabricCaptures {
        captures.withLock { $0.append((host, capture)) }
        return self
    }

    func remove(_ capture: SyntheticCapture) {
        captures.withLock { $0.removeAll { $0.capture === capture } }
    }

    func opened(_ relay: TappedRelay) -> (any TapSink)? {
        let legs = captures.withLock { captures in
            captures.compactMap { entry -> (SyntheticCapture, client: Endpoint, server: Endpoint)? in
                if entry.host == relay.clientHost { return (entry.capture, relay.client, relay.publicEndpoint) }
                if entry.host == relay.targetHost { return (entry.capture, relay.fabricSource, relay.target) }
                return nil
            }
        }
        guard !legs.isEmpty else { return nil }
        switch relay.transport {
        case .tcp:
            return StreamSink(connections: legs.map { $0.0.tcp(client: $0.client, server: $0.server) })
        case .udp:
            return DatagramSink(legs: legs.map { ($0.0, $0.client, $0.server) })
        }
    }

    private struct StreamSink: TapSink {
        let connections: [SyntheticConnection]

        func carried(_ bytes: ByteBuffer, towardsTarget: Bool) {
            for connection in connections { connection.data(fromClient: towardsTarget, bytes.readableBytesView) }
        }

        func ended(towardsTarget: Bool) {
            for connection in connections { connection.end(fromClient: towardsTarget) }
        }
    }

    private struct DatagramSink: TapSink {
        let legs: [(SyntheticCapture, Endpoint, Endpoint)]

        func carried(_ bytes: ByteBuffer, towardsTarget: Bool) {
            for (capture, client, server) in legs {
                if towardsTarget {
                    capture.udp(from: client, to: server, payload: bytes.readableBytesView)
                } else {
                    capture.udp(from: server, to: client, payload: bytes.readableBytesView)
                }
            }
        }

        func ended(towardsTarget: Bool) {}
    }
}

/// A capture the fabric writes; stopping it also takes it off the fabric.
struct FabricHostCapture: HostCapture {
    let capture: SyntheticCapture
    let detach: @Sendable () -> Void

    func stop() -> LiveCapture.Summary {
        detach()
        return capture.stop()
    }
}
