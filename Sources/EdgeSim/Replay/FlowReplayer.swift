import EdgeDNS
import EdgeModel
import EdgePcap
import NIOCore
import NIOPosix

/// Replays one captured flow for real: opens it from the client's address, sends the client's
/// bytes at their captured times (never before the replies the client had seen by then), reads
/// the server's replies, and compares them with the capture's.
struct FlowReplayer: Sendable {
    struct Settings: Sendable {
        var speed: Double
        var compare: ReplayStep.Compare
        var connectTimeout: TimeAmount = .seconds(5)
        /// How long to wait for replies the capture says came before a send, or at the end.
        var replyTimeout: TimeAmount = .seconds(5)
    }

    let group: any EventLoopGroup
    let settings: Settings

    /// `origin`: when the capture's first record is due.
    func replay(
        _ schedule: ReplaySchedule, from source: IPAddress, to target: Endpoint, origin: ContinuousClock.Instant,
        result: inout ReplayResult
    ) async {
        result.expectedReplies = schedule.expectedReplies
        let keep = schedule.isStream ? schedule.expectedReplies + 65_536 : schedule.replies.count + 64
        do {
            // A UDP socket is opened a little ahead (binding sends nothing), so its first datagram
            // goes on time; a TCP connection opens when the captured one did.
            let lead: Duration = schedule.isStream ? .zero : Self.udpLead
            try await Task.sleep(until: due(schedule.start, origin) - lead, tolerance: .zero)
            let (channel, log) = try await open(schedule.isStream, from: source, to: target, keep: keep)
            defer { channel.close(promise: nil) }
            // When the flow could next send: connected, the previous write taken (TCP keeps
            // its order), the replies the capture had before the send in.
            var ready = schedule.isStream ? ContinuousClock.now : origin
            for send in schedule.sends {
                var when = due(send.at, origin)
                if send.afterReplies > 0 {
                    try await log.wait(for: send.afterReplies, timeout: settings.replyTimeout).get()
                    let state = try await log.snapshot().get()
                    if state.count < send.afterReplies {
                        throw Failure(
                            description: state.ended
                                ? "the server ended the flow after \(state.count) of the \(send.afterReplies) reply \(unit(schedule)) the client had before its next send"
                                : "waited \(settings.replyTimeout) for \(send.afterReplies) reply \(unit(schedule)) the client had before its next send; \(state.count) came"
                        )
                    }
                    ready = max(ready, try await log.reached(send.afterReplies).get() ?? .now)
                }
                // The network holding a send back past its time makes it due when it let go, so
                // the lateness measured is the replayer's own.
                if settings.speed > 0, ready > when {
                    if ready - when > .milliseconds(1) { result.heldForReplies += 1 }
                    when = ready
                }
                try await Self.wait(until: when, on: channel.eventLoop)
                if settings.speed > 0 { result.timingErrorsMs.append((ContinuousClock.now - when).milliseconds) }
                let buffer = ByteBuffer(bytes: send.bytes)
                if schedule.isStream {
                    try await channel.writeAndFlush(buffer).get()
                    ready = .now
                } else {
                    try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: target.socketAddress, data: buffer)).get()
                }
                result.sends += 1
                result.bytesSent += send.bytes.count
            }
            try await log.wait(for: schedule.expectedReplies, timeout: settings.replyTimeout).get()
            if schedule.isStream {
                // As the captured client did: end its side, then let the server finish.
                try? await channel.close(mode: .output).get()
                try await log.wait(for: .max, timeout: settings.replyTimeout).get()
            }
            let state = try await log.snapshot().get()
            result.receives = state.reads
            result.bytesReceived = state.bytesReceived
            if let failure = state.failure, state.count < schedule.expectedReplies { throw Failure(description: failure) }
            if let mismatch = compare(schedule, state) {
                result.mismatch = true
                throw Failure(description: mismatch)
            }
            result.ok = true
        } catch is CancellationError {
            result.error = "stopped before it finished"
        } catch {
            result.error = "\(error)"
        }
    }

    static let udpLead: Duration = .milliseconds(20)

    /// Waits on the flow's own event loop (a timer of its epoll loop), which wakes closer to the
    /// time than a task sleeping among many.
    static func wait(until instant: ContinuousClock.Instant, on loop: any EventLoop) async throws {
        let left = ContinuousClock.now.duration(to: instant)
        guard left > .zero else { return }
        let (seconds, attoseconds) = left.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        try await loop.scheduleTask(in: .nanoseconds(nanoseconds)) {}.futureResult.get()
        try Task.checkCancellation()
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private func unit(_ schedule: ReplaySchedule) -> String { schedule.isStream ? "bytes" : "datagrams" }

    private func due(_ captureTime: Double, _ origin: ContinuousClock.Instant) -> ContinuousClock.Instant {
        settings.speed == 0 ? origin : origin + .seconds(captureTime / settings.speed)
    }

    private func open(_ stream: Bool, from source: IPAddress, to target: Endpoint, keep: Int) async throws -> (any Channel, ReplyLog) {
        let settings = self.settings
        return try await group.onLoop { loop in
            let log = ReplyLog(loop: loop, isStream: stream, keep: keep)
            if stream {
                return ClientBootstrap(group: loop)
                    .connectTimeout(settings.connectTimeout)
                    .channelOption(.allowRemoteHalfClosure, value: true)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(StreamReplyHandler(log: log))
                        }
                    }
                    .bind(to: Endpoint(source, 0).socketAddress)
                    .connect(to: target.socketAddress)
                    .map { ($0, log) }
            }
            return DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DatagramReplyHandler(log: log)) }
                }
                .bind(to: Endpoint(source, 0).socketAddress)
                .map { ($0, log) }
        }.get()
    }

    /// Why the replies differ from the capture's, or nil when they match as the step asks.
    private func compare(_ schedule: ReplaySchedule, _ state: ReplyLog.Snapshot) -> String? {
        switch settings.compare {
        case .none:
            return nil
        case .length:
            if schedule.isStream {
                let expected = schedule.expectedReplies
                return state.count == expected ? nil : "\(state.count) reply bytes where the capture has \(expected)"
            }
            let got = state.datagrams.map(\.count)
            let expected = schedule.replies.map(\.count)
            return got == expected ? nil : "reply datagrams of \(got) bytes where the capture has \(expected)"
        case .exact:
            if schedule.isStream {
                let expected = schedule.replies.flatMap { $0 }
                guard state.count == expected.count else { return "\(state.count) reply bytes where the capture has \(expected.count)" }
                guard let at = expected.indices.first(where: { state.bytes[$0] != expected[$0] }) else { return nil }
                return "the reply differs from the capture's at byte \(at)"
            }
            guard state.datagrams.count == schedule.replies.count else {
                return "\(state.datagrams.count) reply datagrams where the capture has \(schedule.replies.count)"
            }
            guard let at = schedule.replies.indices.first(where: { state.datagrams[$0] != schedule.replies[$0] }) else { return nil }
            return "reply datagram \(at + 1) differs from the capture's"
        }
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
