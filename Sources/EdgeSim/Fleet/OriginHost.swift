import EdgeModel
import EdgeNet
import EdgeProxy
import Foundation
import NIOCore

/// One topology origin running on its host address: a built-in origin in this process, or a
/// user's command as a child process.
public final class OriginHost: Sendable {
    public let spec: OriginSpec
    public let address: IPAddress
    private let tcp: TCPOrigin?
    private let udp: [UDPEchoOrigin]
    private let command: CommandOrigin
    private let postfix: PostfixOrigin?
    private let running = Locked(false)

    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `wrap` turns a command line into one that runs on the origin's host (`ip netns exec NS`);
    /// `hostname` is its name in reverse DNS; mail checks ask `dns`.
    public init(
        spec: OriginSpec, address: IPAddress, group: any EventLoopGroup, hostname: String? = nil, dns: Endpoint? = nil,
        tls: (certificate: String, key: String)? = nil, wrap: @escaping @Sendable ([String]) -> [String] = { $0 }
    ) {
        command = CommandOrigin(wrap: wrap)
        self.spec = spec
        self.address = address
        let hostname = hostname ?? "\(spec.name).example"
        switch spec.kind {
        case .tcpEcho: tcp = TCPOrigin(expecting: spec.proxyProtocol, group: group, tls: tls)
        case .smtp:
            let settings = MailServerSettings(
                banner: spec.banner ?? "\(hostname) ESMTP edgesim", hostname: hostname, checks: spec.checks, resolver: dns)
            tcp = TCPOrigin(expecting: spec.proxyProtocol, responder: .smtp(settings), group: group, tls: tls)
        case .http: tcp = TCPOrigin(expecting: spec.proxyProtocol, responder: .http, group: group, tls: tls)
        case .udpEcho, .command, .postfix: tcp = nil
        }
        postfix = spec.kind == .postfix ? PostfixOrigin(spec: spec, address: address, hostname: hostname, wrap: wrap) : nil
        udp =
            spec.kind == .udpEcho
            ? spec.ports.flatMap { range in
                (range.first...range.last).map { _ in UDPEchoOrigin(expecting: spec.proxyProtocol, group: group) }
            } : []
    }

    public var ports: [UInt16] { spec.ports.flatMap { Array($0.first...$0.last) } }

    /// Starts listening; false when it already was (nothing changes then).
    @discardableResult
    public func start() async throws -> Bool {
        guard
            running.withLock({ running in
                defer { running = true }
                return !running
            })
        else { return false }
        do {
            if let tcp { try await tcp.start(address: address, ports: ports) }
            for (origin, port) in zip(udp, ports) { _ = try await origin.start(at: Endpoint(address, port)) }
            if spec.kind == .command { try command.start(spec, address: address, ports: ports) }
            try await postfix?.start()
        } catch {
            await stop()
            let where_ =
                ports.count == 1
                ? "\(address) port \(ports[0])" : "\(address) ports \(spec.ports.map(\.description).joined(separator: ", "))"
            throw StartFailure(description: "cannot start origin \(spec.name) on \(where_): \(error)")
        }
        return true
    }

    public func stop() async {
        running.set(false)
        await postfix?.stop()
        await tcp?.stop()
        for origin in udp { await origin.stop() }
        await command.stop()
    }

    /// Starts or ends misbehaving (built-in TCP origins).
    public func setFault(_ fault: TCPOrigin.Fault) {
        tcp?.setFault(fault)
    }

    /// Client addresses the origin was told (PROXY headers and Simple Proxy Protocol), with the
    /// port each arrived on.
    public var clientsSeen: [(port: UInt16, client: IPAddress)] {
        let viaTCP = (tcp?.connections ?? []).compactMap { seen in seen.header?.source.map { (seen.localPort, $0.address.unmapped) } }
        let viaUDP = zip(udp, ports).flatMap { origin, port in
            origin.datagrams.compactMap { seen in seen.client.map { (port, $0.address.unmapped) } }
        }
        let viaPostfix = (postfix?.clientsSeen ?? []).map { (ports.first ?? 25, $0.unmapped) }
        return viaTCP + viaUDP + viaPostfix
    }

    /// How each mail transaction ended (smtp and postfix origins).
    public var mailOutcomes: [MailOutcome] { postfix?.outcomes ?? tcp?.mailOutcomes ?? [] }
}

/// A user's program as an origin, started once per port with `{address}` and `{port}` filled in.
/// It runs under a small shell that holds a pipe from the runner: when the pipe closes (the
/// origin is stopped, or the runner is gone however it went) the shell ends the program, so
/// no user program outlives its run.
final class CommandOrigin: Sendable {
    private let processes = LockedProcesses()
    private let inputs = Locked<[FileHandle]>([])
    private let wrap: @Sendable ([String]) -> [String]
    static let guardian = "\"$@\" & child=$!; cat > /dev/null; kill $child 2>/dev/null; sleep 1; kill -9 $child 2>/dev/null; wait"

    init(wrap: @escaping @Sendable ([String]) -> [String]) {
        self.wrap = wrap
    }

    func start(_ spec: OriginSpec, address: IPAddress, ports: [UInt16]) throws {
        for port in ports.isEmpty ? [0] : ports {
            let words = spec.command.map {
                $0.replacingOccurrences(of: "{address}", with: address.description).replacingOccurrences(of: "{port}", with: String(port))
            }
            guard !words.isEmpty else { return }
            let line = wrap(["/bin/sh", "-c", Self.guardian, "sh"] + words)
            let process = try ChildProcess(line, input: .pipe)
            processes.add(process)
            if let input = process.input { inputs.set(inputs.value + [input]) }
        }
    }

    func stop() async {
        for input in inputs.value { try? input.close() }
        inputs.set([])
        for process in processes.takeAll() { await process.end(within: .seconds(3)) }
    }
}
