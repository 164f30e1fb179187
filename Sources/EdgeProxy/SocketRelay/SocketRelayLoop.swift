import CEdgeNet
import EdgeModel
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A thread that serves plain TCP applications (no TLS, no HTTP, no smart routing, origins
/// given as addresses) on its own epoll set, outside SwiftNIO's channels: it accepts, connects
/// to the origin, writes the PROXY header and moves the bytes between the two sockets, with one
/// object per connection and no timer (a sweep every quarter second checks connect deadlines
/// and idleness). SwiftNIO spends some 150 allocations and a dozen epoll changes on the two
/// channels of each relayed connection; this spends three allocations and two epoll additions.
final class SocketRelayLoop: @unchecked Sendable {
    enum Command {
        case listen(Endpoint, ApplicationService, reusePort: Bool, done: @Sendable (Result<Int, any Error>) -> Void)
        case closeListener(Int, done: @Sendable () -> Void)
        /// Ends every connection, as a killed process would.
        case abort(done: @Sendable () -> Void)
        /// Ends the thread once it has no listener and no connection left.
        case quitWhenIdle
    }

    private enum Kind: UInt64 {
        case wake = 0
        case listener = 1
        case client = 2
        case origin = 3
    }

    private let epoll: Int32
    private let wake: Int32
    /// Commands not yet carried out, and whether the thread has ended (then a command is answered
    /// at once: nothing is listening or open any more).
    private let inbox = Mutex<(commands: [Command], ended: Bool)>(([], false))

    // Used on the loop's thread only.
    private var listeners: [Int: (fd: Int32, endpoint: Endpoint, service: ApplicationService)] = [:]
    private var nextListener = 0
    private var connections: [RelayedConnection?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    private var open = 0
    private var quitting = false
    /// Listeners whose accept ran out of descriptors or memory: tried again at each sweep (their
    /// waiting connections raise no new edge).
    private var starved: Set<Int> = []
    static let bufferSize = 256 * 1024
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: SocketRelayLoop.bufferSize, alignment: 16)
    private static let sweepInterval = TimeAmount.milliseconds(250)

    /// The thread's name, as `ps -L` shows it.
    let name: String

    init(name: String) throws {
        self.name = name
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wake = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wake >= 0 else {
            let code = errno
            close(epoll)
            throw IOError(errnoCode: code, reason: "eventfd")
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data(u64: Kind.wake.rawValue))
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event)
    }

    /// Whether the thread has ended.
    var hasEnded: Bool { inbox.withLock { $0.ended } }

    func send(_ command: Command) {
        let ended = inbox.withLock { inbox in
            if !inbox.ended { inbox.commands.append(command) }
            return inbox.ended
        }
        guard ended else {
            var one: UInt64 = 1
            _ = write(wake, &one, 8)
            return
        }
        Self.answerEnded(command)
    }

    private static func answerEnded(_ command: Command) {
        switch command {
        case .listen(_, _, _, let done): done(.failure(IOError(errnoCode: ESHUTDOWN, reason: "relay thread ended")))
        case .closeListener(_, let done), .abort(let done): done()
        case .quitWhenIdle: break
        }
    }

    /// The thread's body: runs until told to quit and idle.
    func run() {
        cedgenet_name_thread(name)
        var events = [epoll_event](repeating: epoll_event(), count: 128)
        var lastSweep = NIODeadline.now()
        while !(quitting && listeners.isEmpty && open == 0) {
            let timeout: Int32 = open > 0 || !starved.isEmpty ? Int32(Self.sweepInterval.nanoseconds / 1_000_000) : -1
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), timeout) }
            let now = NIODeadline.now()
            if count > 0 {
                for index in 0..<Int(count) {
                    let token = events[index].data.u64
                    handle(token: token, events: events[index].events, now: now)
                }
            }
            if now - lastSweep >= Self.sweepInterval {
                lastSweep = now
                sweep(now: now)
            }
        }
        let left = inbox.withLock { inbox in
            inbox.ended = true
            defer { inbox.commands.removeAll() }
            return inbox.commands
        }
        for command in left { Self.answerEnded(command) }
    }

    deinit {
        // Here, not as the thread ends: a sender may still be about to wake it.
        close(epoll)
        close(wake)
        scratch.deallocate()
    }

    private func token(_ kind: Kind, _ index: Int, generation: UInt32 = 0) -> UInt64 {
        kind.rawValue | UInt64(index) << 2 | UInt64(generation) << 32
    }

    private func handle(token: UInt64, events: UInt32, now: NIODeadline) {
        let index = Int((token >> 2) & 0x3FFF_FFFF)
        switch Kind(rawValue: token & 3)! {
        case .wake:
            var value: UInt64 = 0
            _ = read(wake, &value, 8)
            let commands = inbox.withLock { inbox in
                defer { inbox.commands.removeAll() }
                return inbox.commands
            }
            for command in commands { carryOut(command, now: now) }
        case .listener:
            accept(listener: index, now: now)
        case .client, .origin:
            guard index < connections.count, let connection = connections[index], connection.generation == UInt32(token >> 32) else {
                return
            }
            ready(connection, originSide: token & 3 == Kind.origin.rawValue, events: events, now: now)
        }
    }

    private func carryOut(_ command: Command, now: NIODeadline) {
        switch command {
        case .listen(let endpoint, let service, let reusePort, let done):
            done(Result { try listen(on: endpoint, service: service, reusePort: reusePort) })
        case .closeListener(let id, let done):
            if let listener = listeners.removeValue(forKey: id) { close(listener.fd) }
            starved.remove(id)
            done()
        case .abort(let done):
            for case let connection? in connections { end(connection, now: now) }
            done()
        case .quitWhenIdle:
            quitting = true
        }
    }

    private func listen(on endpoint: Endpoint, service: ApplicationService, reusePort: Bool) throws -> Int {
        let fd = socket(
            endpoint.address.isIPv4 ? AF_INET : AF_INET6,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = endpoint.socketAddress.withSockAddr { address, length in bind(fd, address, socklen_t(length)) }
        guard bound == 0, Glibc.listen(fd, 1024) == 0 else {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: bound == 0 ? "listen" : "bind")
        }
        let id = nextListener
        nextListener += 1
        var event = epoll_event(events: EPOLLIN.rawValue | EPOLLET.rawValue, data: epoll_data(u64: token(.listener, id)))
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: "epoll_ctl")
        }
        listeners[id] = (fd, endpoint, service)
        return id
    }

    private func accept(listener id: Int, now: NIODeadline) {
        guard let listener = listeners[id] else { return }
        let service = listener.service
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    cedgenet_accept(listener.fd, $0, &length)
                }
            }
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM: starved.insert(id)
                default: break
                }
                return
            }
            service.counters.add(.tcpAccepted)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if var size = service.configuration.socketSendBuffer.map(Int32.init) {
                _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            let client = Endpoint(storage: storage) ?? Endpoint(.v4(0), 0)
            let slot =
                freeSlots.popLast()
                ?? {
                    connections.append(nil)
                    generations.append(0)
                    return connections.count - 1
                }()
            generations[slot] &+= 1
            let connection = RelayedConnection(
                slot: slot, generation: generations[slot], service: service, client: fd, clientEndpoint: client,
                edgeEndpoint: listener.endpoint, now: now)
            connections[slot] = connection
            open += 1
            connection.record.start(client: client, edge: listener.endpoint)
            if let limit = service.gate.enter(service.app.id) {
                // Over a limit: reset at once, with no state kept for it.
                service.counters.add(.tcpRefusedLimit)
                connection.gateHeld = false
                connection.record.limited(limit, client: client, edge: listener.endpoint)
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                end(connection, now: now)
                continue
            }
            var event = epoll_event(
                events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
                data: epoll_data(u64: token(.client, slot, generation: connection.generation)))
            _ = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
            let decision = service.accessDecision(for: client.address)
            perform(
                connection.machine.accepted(
                    allowed: decision?.allowed ?? true, rule: decision?.rule.map { "\($0.action.rawValue) \($0.target)" }),
                on: connection, now: now)
        }
    }

    private func perform(_ action: TCPSessionStateMachine.Action, on connection: RelayedConnection, now: NIODeadline) {
        switch action {
        case .none, .closeOrigin, .join:
            break
        case .resolve:
            perform(
                connection.machine.resolved(connection.service.origins.directCandidates(edgePort: connection.edgeEndpoint.port) ?? []),
                on: connection, now: now)
        case .connect(let origin), .connectDirect(let origin):
            connect(connection, to: origin, now: now)
        case .close(let outcome):
            switch outcome {
            case .filtered(let rule): connection.record.filtered(rule: rule)
            case .resolveFailed(let failure): connection.record.resolveFailed(status: failure.status, message: failure.message)
            case .originFailed(let failure):
                connection.record.originFailed(status: failure.status, message: failure.message, origin: nil, via: [])
            case .tlsFailed(let failure, let origin):
                connection.record.tlsFailed(status: failure.status, message: failure.message, origin: origin)
            }
            end(connection, now: now)
        case .readHello, .secureClient, .serveHTTP:
            // Not for this relay: such applications stay on SwiftNIO's channels.
            end(connection, now: now)
        }
    }

    private func connect(_ connection: RelayedConnection, to origin: Endpoint, now: NIODeadline) {
        let configuration = connection.service.configuration
        let fd = socket(
            origin.address.isIPv4 ? AF_INET : AF_INET6,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var failure: Int32 = fd < 0 ? errno : 0
        if fd >= 0 {
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if var size = configuration.socketSendBuffer.map(Int32.init) {
                _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            if let source = configuration.sourceAddress(towards: origin),
                source.withSockAddr({ address, length in bind(fd, address, socklen_t(length)) }) != 0
            {
                failure = errno
            }
            if failure == 0 {
                let result = origin.socketAddress.withSockAddr { address, length in Glibc.connect(fd, address, socklen_t(length)) }
                if result != 0, errno != EINPROGRESS { failure = errno }
            }
        }
        guard failure == 0 else {
            if fd >= 0 { close(fd) }
            connectFailed(connection, errno: failure, now: now)
            return
        }
        connection.origin = fd
        connection.connectStarted = now
        connection.connectDeadline = now + configuration.connectTimeout
        var event = epoll_event(
            events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
            data: epoll_data(u64: token(.origin, connection.slot, generation: connection.generation)))
        _ = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
    }

    private func connectFailed(_ connection: RelayedConnection, errno code: Int32, now: NIODeadline) {
        if connection.origin >= 0 {
            close(connection.origin)
            connection.origin = -1
        }
        connection.connectDeadline = nil
        let status: StatusCode =
            switch code {
            case ECONNREFUSED: .originRefused
            case EHOSTUNREACH, ENETUNREACH: .originUnreachable
            case ETIMEDOUT: .originTimeout
            default: .originRefused
            }
        let message = code == ETIMEDOUT ? "connect timed out" : String(cString: strerror(code))
        perform(connection.machine.connectFailed(.init(status: status, message: message)), on: connection, now: now)
    }

    private let hangUp = EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue

    private func ready(_ connection: RelayedConnection, originSide: Bool, events: UInt32, now: NIODeadline) {
        let readable = events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
        if originSide, !connection.joined {
            guard connection.connectDeadline != nil, events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else {
                return
            }
            if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                // Only a failed connect reports these; the socket's error says why.
                var code: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(connection.origin, SOL_SOCKET, SO_ERROR, &code, &length)
                return connectFailed(connection, errno: code == 0 ? ECONNREFUSED : code, now: now)
            }
            connection.connectDeadline = nil
            guard case .join(let origin) = connection.machine.connected() else { return end(connection, now: now) }
            connection.record.connected(origin: origin, rtt: now - connection.connectStarted, via: [])
            connection.joined = true
            if let header = connection.service.proxyHeader(
                client: connection.clientEndpoint, edge: connection.edgeEndpoint, allocator: ByteBufferAllocator())
            {
                connection.toOrigin.pending = Array(header.readableBytesView)
            }
            connection.toClient.sourceReadable = readable
            connection.toClient.hangingUp = events & hangUp != 0
            // The client may have sent bytes (edge-triggered: said once) before the origin was there.
            connection.toOrigin.sourceReadable = true
            return relay(connection, now: now)
        }
        if originSide {
            if readable { connection.toClient.sourceReadable = true }
            if events & hangUp != 0 { connection.toClient.hangingUp = true }
        } else {
            if readable { connection.toOrigin.sourceReadable = true }
            if events & hangUp != 0 { connection.toOrigin.hangingUp = true }
            if !connection.joined, events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                // Gone before its origin was reached.
                _ = connection.machine.clientClosed()
                return end(connection, now: now)
            }
        }
        if connection.joined { relay(connection, now: now) }
    }

    private func relay(_ connection: RelayedConnection, now: NIODeadline) {
        var result = connection.pump(toOrigin: true, scratch: scratch, now: now)
        if case .waiting = result { result = connection.pump(toOrigin: false, scratch: scratch, now: now) }
        if case .failed(let code, let originSide) = result {
            connection.record.failed(IOError(errnoCode: code, reason: originSide ? "origin" : "client"), onOriginSide: originSide)
            return end(connection, now: now)
        }
        if connection.isFinished { end(connection, now: now) }
    }

    /// Closes both sockets and frees the slot.
    private func end(_ connection: RelayedConnection, now: NIODeadline) {
        guard connections[connection.slot] === connection else { return }
        connections[connection.slot] = nil
        freeSlots.append(connection.slot)
        open -= 1
        close(connection.client)
        if connection.origin >= 0 { close(connection.origin) }
        let service = connection.service
        if connection.gateHeld { service.gate.leave(service.app.id) }
        connection.record.closed()
        service.counters.add(.tcpClosed)
    }

    /// Connect deadlines and idle connections, every `sweepInterval`.
    private func sweep(now: NIODeadline) {
        for id in starved {
            starved.remove(id)
            accept(listener: id, now: now)
        }
        for case let connection? in connections {
            if let deadline = connection.connectDeadline, now >= deadline {
                connectFailed(connection, errno: ETIMEDOUT, now: now)
                continue
            }
            let configuration = connection.service.configuration
            let limit =
                connection.isHalfClosed
                ? min(configuration.tcpIdleTimeout, configuration.tcpHalfClosedTimeout) : configuration.tcpIdleTimeout
            guard now - connection.lastActivity >= limit else { continue }
            let seconds = Double(limit.nanoseconds) / 1e9
            connection.record.timedOut(
                connection.isHalfClosed
                    ? "half-closed and nothing moved for \(seconds) s (tcp_half_closed_timeout)"
                    : "idle for \(seconds) s (tcp_idle_timeout)")
            end(connection, now: now)
        }
    }
}

extension Endpoint {
    /// The address an `accept` filled in; nil for other families.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(.v4(UInt32(bigEndian: raw.sin_addr.s_addr)), UInt16(bigEndian: raw.sin_port))
        case AF_INET6:
            var raw = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let value = withUnsafeBytes(of: &raw.sin6_addr) { bytes in bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
            self.init(.v6(value), UInt16(bigEndian: raw.sin6_port))
        default:
            return nil
        }
    }
}
