import EdgeModel
import EdgeProxy
import NIOCore
import NIOPosix
import Testing

/// A built-in TCP origin made to misbehave: silent (it holds connections without reading, and
/// they go on once it reads again) and resetting (open and new connections are reset).
@Suite struct OriginFaultTests {
    func connect(_ endpoint: Endpoint) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: endpoint.socketAddress) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
    }

    @Test func aSilentOriginHoldsConnectionsUntilItReadsAgain() async throws {
        let origin = TCPOrigin()
        let endpoint = try await origin.start(address: Loopback.address())[0]
        let before = try await connect(endpoint)
        origin.setFault(.silent)
        let during = try await connect(endpoint)
        let echoes = try await withThrowingTaskGroup(of: String?.self) { group in
            for connection in [before, during] {
                group.addTask {
                    try await connection.executeThenClose { inbound, outbound in
                        try await outbound.write(ByteBuffer(string: "held"))
                        var iterator = inbound.makeAsyncIterator()
                        return try await iterator.next().map { String(buffer: $0) }
                    }
                }
            }
            // Nothing can come back while it is silent; once it reads again, both are answered.
            origin.setFault(.none)
            var echoes: [String?] = []
            for try await echo in group { echoes.append(echo) }
            return echoes
        }
        #expect(echoes == ["held", "held"])
        await origin.stop()
    }

    @Test func aResettingOriginResetsOpenAndNewConnections() async throws {
        let origin = TCPOrigin()
        let endpoint = try await origin.start(address: Loopback.address())[0]
        let open = try await connect(endpoint)
        origin.setFault(.reset)
        func ends(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async -> Bool {
            do {
                return try await connection.executeThenClose { inbound, _ in
                    var iterator = inbound.makeAsyncIterator()
                    return try await iterator.next() == nil
                }
            } catch {
                return true
            }
        }
        #expect(await ends(open))
        // A new connection is reset as it is accepted (or right after).
        if let new = try? await connect(endpoint) { #expect(await ends(new)) }
        origin.setFault(.none)
        let fine = try await connect(endpoint)
        let echo = try await fine.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "back"))
            var iterator = inbound.makeAsyncIterator()
            return try await iterator.next().map { String(buffer: $0) }
        }
        #expect(echo == "back")
        await origin.stop()
    }

    /// An origin expecting a PROXY header closes a sender that does not complete one in time.
    @Test func aHeaderThatNeverCompletesIsCutOff() async throws {
        let origin = TCPOrigin(expecting: .v1, headerTimeout: .milliseconds(200))
        let endpoint = try await origin.start(address: Loopback.address())[0]
        let connection = try await connect(endpoint)
        let ended = try await connection.executeThenClose { inbound, outbound in
            // Under load the timeout may already have closed it; either way it must end.
            try? await outbound.write(ByteBuffer(string: "PROXY TCP4 198.18."))
            do {
                for try await _ in inbound { return false }
            } catch {}
            return true
        }
        #expect(ended)
        #expect(origin.connections.isEmpty, "no header, so nothing recorded")
        await origin.stop()
    }
}
