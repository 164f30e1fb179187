import ArgumentParser
import EdgeModel
import EdgeProxy
import Foundation
import Logging
import ServiceLifecycle

struct OriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Run a built-in origin in the foreground: a TCP or UDP echo server, or an HTTP/1.1 server.",
        discussion: """
            With --proxy-protocol the origin expects that header (it never guesses): v1 or v2 before \
            each TCP connection's bytes, v2 on each UDP peer's first datagram, simple on every datagram \
            (and the same header on every reply). It logs the client address each header names.
            """
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case tcpEcho = "tcp-echo"
        case udpEcho = "udp-echo"
        /// Answers every request (keep-alive) with the headers it received.
        case http
    }

    @Argument(help: "tcp-echo, udp-echo or http.")
    var kind: Kind

    @Option(help: "address:port to listen on (port 0: any free port, printed at start).")
    var listen = "127.0.0.1:0"

    @Option(help: "Header to expect: off, v1, v2 or simple.")
    var proxyProtocol: String = "off"

    func validate() throws {
        guard Endpoint(listen) != nil else { throw ValidationError("--listen \(listen) is not address:port") }
        guard let mode = ProxyProtocolMode(rawValue: proxyProtocol) else {
            throw ValidationError("--proxy-protocol must be off, v1, v2 or simple")
        }
        if kind != .udpEcho, mode == .simple { throw ValidationError("simple is UDP only") }
        if kind == .udpEcho, mode == .v1 { throw ValidationError("v1 is TCP only") }
    }

    func run() async throws {
        let endpoint = Endpoint(listen)!
        let mode = ProxyProtocolMode(rawValue: proxyProtocol)!
        let name = kind.rawValue
        let start: @Sendable () async throws -> Endpoint
        let stop: @Sendable () async -> Void
        switch kind {
        case .tcpEcho, .http:
            let origin = TCPOrigin(expecting: mode, responder: kind == .http ? .http : .echo)
            start = { try await origin.start(address: endpoint.address, ports: [endpoint.port])[0] }
            stop = { await origin.stop() }
        case .udpEcho:
            let origin = UDPEchoOrigin(expecting: mode)
            start = { try await origin.start(at: endpoint) }
            stop = { await origin.stop() }
        }
        // Started inside the service group, so a signal that comes right after the address is
        // printed already finds the group's handlers in place.
        let service = OriginService(start: start, stop: stop) { bound in say("origin \(name): listening on \(bound)") }
        let group = ServiceGroup(
            configuration: .init(
                services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "edgesim.origin")))
        try await group.run()
    }
}

/// Keeps an origin up until shutdown, then closes it.
final class OriginService: Service {
    let start: @Sendable () async throws -> Endpoint
    let stop: @Sendable () async -> Void
    let onReady: @Sendable (Endpoint) -> Void

    init(
        start: @escaping @Sendable () async throws -> Endpoint, stop: @escaping @Sendable () async -> Void,
        onReady: @escaping @Sendable (Endpoint) -> Void
    ) {
        self.start = start
        self.stop = stop
        self.onReady = onReady
    }

    func run() async throws {
        onReady(try await start())
        try? await gracefulShutdown()
        await stop()
    }
}
