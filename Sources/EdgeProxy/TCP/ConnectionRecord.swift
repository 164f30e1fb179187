import EdgeModel
import NIOCore

/// What happened to one TCP connection, turned into events. Used only on the connection's event
/// loop (both channels of a relay share it).
final class ConnectionRecord {
    private let service: ApplicationService
    private var client = Endpoint(.v4(0), 0)
    private var edge = Endpoint(.v4(0), 0)
    private var origin: Endpoint?
    private var started = NIODeadline.now()
    private var originRTT: TimeAmount?
    /// From the start to the origin's first byte for the client.
    private var firstByte: TimeAmount?
    /// Edge nodes the origin leg went through; empty for direct.
    private var via: [String] = []
    private var bytesIn: UInt64 = 0
    private var bytesOut: UInt64 = 0
    private var status: StatusCode = .ok
    private var message: String?
    private var finished = false
    /// Times a read waited because the other side held `buffered_bytes` not yet taken.
    private var readsHeld = 0

    init(service: ApplicationService) {
        self.service = service
    }

    func start(client: Endpoint, edge: Endpoint) {
        self.client = client
        self.edge = edge
        started = .now()
    }

    func addIn(_ count: Int) { bytesIn += UInt64(count) }
    func addOut(_ count: Int) {
        if bytesOut == 0, count > 0 { firstByte = .now() - started }
        bytesOut += UInt64(count)
    }

    func held() {
        if readsHeld == 0 { service.counters.add(.tcpReadsHeld) }
        readsHeld += 1
    }

    func filtered(rule: String?) {
        finished = true
        service.counters.add(.tcpFiltered)
        service.event(.clientFiltered, client: client, edge: edge, status: .blocked, message: rule)
    }

    func originFailed(status: StatusCode, message: String, origin: Endpoint?, via: [String]) {
        finished = true
        service.counters.add(.tcpOriginErrors)
        service.event(
            .originError, client: client, edge: edge, origin: origin, duration: .now() - started, status: status, message: message,
            via: via)
    }

    func resolveFailed(status: StatusCode, message: String) {
        finished = true
        service.counters.add(.tcpOriginErrors)
        service.event(.resolveOrigin, client: client, edge: edge, duration: .now() - started, status: status, message: message)
    }

    /// A handshake failed on either leg, or the application's TLS is unusable.
    func tlsFailed(status: StatusCode, message: String, origin: Endpoint?) {
        finished = true
        service.counters.add(.tcpTLSErrors)
        service.event(.tlsError, client: client, edge: edge, origin: origin, duration: .now() - started, status: status, message: message)
    }

    func connected(origin: Endpoint, rtt: TimeAmount, via: [String]) {
        self.origin = origin
        self.via = via
        originRTT = rtt
        service.event(.connect, client: client, edge: edge, origin: origin, originRTT: rtt, status: .ok, via: via)
    }

    /// Refused at a connection limit, as it was accepted.
    func limited(_ reason: String, client: Endpoint, edge: Endpoint) {
        finished = true
        service.event(.clientLimited, client: client, edge: edge, status: .connectionLimit, message: reason)
    }

    /// The node closes it: nothing moved for too long. Decides the status over a later reset.
    func timedOut(_ reason: String) {
        service.counters.add(.tcpTimedOut)
        status = .idleTimeout
        message = reason
        if origin == nil, !finished {
            // Still waiting for the origin leg: no disconnect would be written, so say it now.
            finished = true
            service.event(.originError, client: client, edge: edge, duration: .now() - started, status: .idleTimeout, message: reason)
        }
    }

    /// An error on one side decides the status, unless one was already set.
    func failed(_ error: any Error, onOriginSide: Bool) {
        guard status == .ok else { return }
        status = onOriginSide ? .originReset : .clientReset
        message = "\(error)"
    }

    /// Called once the client channel has closed.
    func closed() {
        guard !finished, origin != nil else { return }
        finished = true
        service.event(
            .disconnect, client: client, edge: edge, origin: origin, bytesIn: bytesIn, bytesOut: bytesOut, duration: .now() - started,
            originRTT: originRTT, status: status, message: message, via: via, readsHeld: readsHeld, firstByte: firstByte)
    }
}
