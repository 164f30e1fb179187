/// How one captured flow went when replayed.
public struct ReplayResult: Sendable, Codable, Hashable {
    /// The replay step's place in the timeline (1-based) and its capture's file name.
    public var step: Int
    public var capture: String
    public var client: String
    /// The application id, or `fleet_dns`.
    public var destination: String
    public var transport: String
    /// The captured flow: number in the capture, client and server as captured.
    public var flow: String
    public var ok: Bool
    public var error: String?
    /// The replies differed from the captured ones (as the step compares them).
    public var mismatch: Bool = false
    /// Writes (TCP) or datagrams (UDP) sent, and their bytes.
    public var sends = 0
    public var bytesSent = 0
    /// Reads (TCP) or datagrams (UDP) received, and their bytes.
    public var receives = 0
    public var bytesReceived = 0
    /// Reply bytes (TCP) or datagrams (UDP) in the capture.
    public var expectedReplies = 0
    /// For each send: how much later than due it went, in milliseconds. Due is the capture's
    /// schedule, or when the flow could send if that was later (connected, the previous write
    /// taken, the replies it waits for in). Empty at speed 0.
    public var timingErrorsMs: [Double] = []
    /// Sends held back over 1 ms past their captured time by the network: a connection, replies
    /// or a full socket slower than in the capture (a slower path, or a faster speed than it allows).
    public var heldForReplies = 0
}

extension RunReport.Replay {
    /// One row per replay step and destination; `skipped` gives a step's left-out flows.
    public static func rows(_ results: [ReplayResult], skipped: (Int) -> [String: Int]) -> [RunReport.Replay] {
        let groups = Dictionary(grouping: results) { "\($0.step)\u{0}\($0.destination)" }
        return groups.values.map { flows in
            let first = flows[0]
            let timing = flows.flatMap(\.timingErrorsMs).map(abs).sorted()
            return RunReport.Replay(
                step: first.step, capture: first.capture, client: first.client, destination: first.destination, flows: flows.count,
                succeeded: flows.filter(\.ok).count, mismatched: flows.filter(\.mismatch).count, sends: flows.reduce(0) { $0 + $1.sends },
                bytesSent: flows.reduce(0) { $0 + $1.bytesSent }, receives: flows.reduce(0) { $0 + $1.receives },
                bytesReceived: flows.reduce(0) { $0 + $1.bytesReceived }, timingP50Ms: ExpectationChecker.percentile(timing, 0.5),
                timingP99Ms: ExpectationChecker.percentile(timing, 0.99), timingMaxMs: timing.last,
                heldForReplies: flows.reduce(0) { $0 + $1.heldForReplies },
                errors: Dictionary(grouping: flows.compactMap(\.error), by: { $0 }).mapValues(\.count), skipped: skipped(first.step))
        }.sorted { ($0.step, $0.destination) < ($1.step, $1.destination) }
    }
}
