import Synchronization

/// Running totals of one node's data plane, readable at any time from any thread.
public final class NodeCounters: Sendable {
    public enum Name: Int, CaseIterable, Sendable {
        case tcpAccepted, tcpClosed, tcpFiltered, tcpOriginErrors, tcpRefusedLimit, tcpTimedOut, tcpReadsHeld, tcpTLSErrors
        case udpDatagramsIn, udpDatagramsOut, udpFlowsOpened, udpFlowsExpired, udpFlowsEvicted
        case udpDroppedFragmented, udpDroppedFiltered, udpDroppedPending, udpDroppedBadReply
    }

    private let values = Mutex([Int](repeating: 0, count: Name.allCases.count))

    public init() {}

    public func add(_ name: Name, _ amount: Int = 1) {
        values.withLock { $0[name.rawValue] += amount }
    }

    public subscript(_ name: Name) -> Int {
        values.withLock { $0[name.rawValue] }
    }
}
