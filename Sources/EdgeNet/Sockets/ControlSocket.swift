import Foundation

/// Plain blocking TCP sockets for a control channel between processes (a runner and the
/// node-host processes it drives from another machine or pod): one JSON line at a time, read
/// on a thread of its own, so nothing here needs an event loop.
public enum ControlSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A connected socket and the address of the other end.
    public struct Connection: Sendable {
        public let descriptor: Int32
        public let peer: String
        /// This end's address.
        public let local: String
    }

    /// A listening socket on `host` (an address) and `port` (0: any); returns it and its port.
    public static func listen(host: String, port: Int) throws -> (descriptor: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let (fd, _) = try open(host: host, port: port, hints: hints) { fd, address, length in
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, address, length) == 0, Glibc.listen(fd, 16) == 0 else { return errno }
            return 0
        }
        return (fd, Self.address(of: fd, local: true).port)
    }

    /// Waits for the next connection; nil once the listening socket was shut down.
    public static func accept(_ listener: Int32) -> Connection? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                tune(fd)
                return Connection(descriptor: fd, peer: address(of: fd, local: false).host, local: address(of: fd, local: true).host)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    /// Connects to `host` (a name or an address) on `port`, trying each address it resolves to.
    public static func connect(host: String, port: Int, timeout: Duration) throws -> Connection {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let (fd, _) = try open(host: host, port: port, hints: hints) { fd, address, length in
            var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
            // A send timeout bounds a blocking connect too.
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            guard Glibc.connect(fd, address, length) == 0 else { return errno }
            var none = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
            tune(fd)
            return 0
        }
        return Connection(descriptor: fd, peer: address(of: fd, local: false).host, local: address(of: fd, local: true).host)
    }

    /// Lines go out at once, and a peer that vanishes without closing (its machine or pod gone)
    /// ends the connection within about 25 s rather than after the kernel's many retries.
    private static func tune(_ fd: Int32) {
        let size = socklen_t(MemoryLayout<Int32>.size)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, size)
        var idle: Int32 = 10
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
        var interval: Int32 = 5
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
        var count: Int32 = 3
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, size)
        // Also while lines wait unacknowledged (a runner's pings never leave the line idle).
        var limit: Int32 = 25_000
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &limit, size)
    }

    /// Runs a blocking call (connect, accept, a read) on a thread of its own: Swift's
    /// cooperative pool has a thread a core, and a few calls waiting there on the network would
    /// hold up everything else, the other side of the connection included.
    public static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result(catching: body)) }.start()
        }
    }

    /// Reads bytes up to a newline (not included), at most `limit` of them, within `timeout`;
    /// nil at end of input, on a timeout, or when the line is longer.
    public static func readLine(_ fd: Int32, limit: Int = 1 << 20, timeout: Duration) -> [UInt8]? {
        var limitTime = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limitTime, socklen_t(MemoryLayout<timeval>.size))
        defer {
            var none = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        // One byte at a time: what follows the line belongs to whoever reads the socket next.
        while line.count < limit {
            let count = read(fd, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return line }
            line.append(byte)
        }
        return nil
    }

    /// A write to a connection the other end closed fails rather than ending the process.
    private static let pipeSignalIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private static func open(
        host: String, port: Int, hints: addrinfo, _ use: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws -> (Int32, Int32) {
        _ = pipeSignalIgnored
        var hints = hints
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, "\(port)", &hints, &list)
        guard resolved == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        var problem: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            entry = current.pointee.ai_next
            let fd = socket(
                current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), current.pointee.ai_protocol)
            guard fd >= 0 else {
                problem = errno
                continue
            }
            problem = use(fd, current.pointee.ai_addr, current.pointee.ai_addrlen)
            if problem == 0 { return (fd, current.pointee.ai_family) }
            Glibc.close(fd)
        }
        throw Failure(description: "\(host):\(port): \(String(cString: strerror(problem)))")
    }

    /// A socket's own (`local`) or its peer's address, as text and port.
    public static func address(of fd: Int32, local: Bool) -> (host: String, port: Int) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                local ? getsockname(fd, $0, &length) : getpeername(fd, $0, &length)
            }
        }
        guard found == 0 else { return ("", 0) }
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &text, socklen_t(text.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return ("", 0) }
        return (String(cString: text), Int(String(cString: service)) ?? 0)
    }
}
