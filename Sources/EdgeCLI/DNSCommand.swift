import ArgumentParser
import EdgeDNS
import EdgeModel
import EdgeSim
import Foundation
import Logging
import ServiceLifecycle

struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Serve the authoritative DNS for a file of applications, rotating their addresses if asked.",
        discussion: """
            Each dynamic application gets an address from each pool its edge_ips.connectivity asks for; \
            static applications keep theirs. CNAME applications answer with a CNAME to \
            <id>.apps.<fleet domain> plus its addresses; ADDRESS applications answer A/AAAA directly. \
            PTR queries for the pools answer NXDOMAIN. With --rotate-every, addresses change on that \
            schedule and the zones' SOA serials go up with each change. Point dig at the address this \
            prints, e.g. dig @127.0.0.1 -p 5300 NAME A.
            """
    )

    @Option(help: "Applications (a JSON array, a YAML list, or a saved API list response).")
    var apps: String

    @Option(help: "Where to answer, UDP and TCP, as address:port.")
    var listen = "127.0.0.1:5300"

    @Option(name: .customLong("pool-ipv4"), help: "IPv4 pool for application addresses.")
    var poolIPv4 = "198.19.0.0/16"

    @Option(name: .customLong("pool-ipv6"), help: "IPv6 pool for application addresses.")
    var poolIPv6 = "2001:db8:a::/48"

    @Option(help: "Domain of the generated host names.")
    var fleetDomain = "edgesim.test"

    @Option(help: "TTL of address records, in seconds.")
    var ttl = 30

    @Option(help: "Rotate every dynamic application's addresses this often (e.g. 30s).")
    var rotateEvery: String?

    @Option(
        help:
            "UDP answers a second per client prefix (/24, /56); over it every second query is answered truncated, the rest dropped. 0 turns it off."
    )
    var rateLimit = 200

    func validate() throws {
        guard Endpoint(listen) != nil else { throw ValidationError("--listen \(listen) is not address:port") }
        for (flag, text) in [("--pool-ipv4", poolIPv4), ("--pool-ipv6", poolIPv6)] {
            if case .failure(let problem) = IPPrefix.parse(text) { throw ValidationError("\(flag): \(problem.message)") }
        }
        guard DNSName(fleetDomain) != nil else { throw ValidationError("--fleet-domain \(fleetDomain) is not a domain name") }
        guard (0...86400).contains(ttl) else { throw ValidationError("--ttl must be 0-86400 seconds") }
        guard rateLimit >= 0 else { throw ValidationError("--rate-limit must be 0 (off) or more") }
        if let rotateEvery {
            guard case .success(let every) = Quantity.duration(rotateEvery), every >= .seconds(1) else {
                throw ValidationError("--rotate-every \(rotateEvery) must be a duration of at least 1s")
            }
        }
    }

    func run() async throws {
        let loaded: Loaded<[Application]>
        do {
            loaded = try ConfigLoader().loadApplications(apps)
        } catch {
            for issue in error.issues { printError(issue.description) }
            throw ExitCode(2)
        }
        let pools = (ipv4: try IPPrefix.parse(poolIPv4).get(), ipv6: try IPPrefix.parse(poolIPv6).get())
        let book = AddressBook(ipv4: pools.ipv4, ipv6: pools.ipv6)
        let zones = EdgeZones(fleetDomain: DNSName(fleetDomain)!, ttl: UInt32(ttl), pools: pools)
        let store = ZoneStore()
        let rotator = AddressRotator(applications: loaded.value, book: book, zones: zones, store: store, servers: [], drain: .zero)
        do {
            try await rotator.start()
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let server = DNSServer(zones: store, rateLimit: .init(rate: rateLimit))
        let address = Endpoint(listen)!
        let apps = loaded.value
        let logger = Logger(label: "edgesim.dns")
        let rotation = rotateEvery.flatMap { try? Quantity.duration($0).get() }
        let listing = apps.map { app in
            let addresses = book.addresses(of: app).map(\.description).joined(separator: " ")
            let via = app.dns.type == .cname ? " via \(zones.generatedHost(app))" : ""
            return "  \(app.dns.name) (\(app.id))\(via): \(addresses)"
        }
        let announce: @Sendable (Endpoint) -> Void = { bound in
            say("dns: answering on udp and tcp \(bound)  (dig @\(bound.address) -p \(bound.port) NAME A)")
            for line in listing { say(line) }
        }
        let report: @Sendable (AddressRotator.Rotation) -> Void = { rotated in
            say("rotated \(rotated.app): \(rotated.old.joined(separator: " ")) -> \(rotated.new.joined(separator: " "))")
        }
        let service = DNSService(server: server, at: address, rotator: rotator, every: rotation, onReady: announce, onRotation: report)
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let counters = server.counters
        printError(
            "dns: \(counters.queries) queries, \(counters.formatErrors) format errors, \(counters.dropped) dropped, \(counters.truncated) truncated"
        )
    }
}

/// The responder as a service: serves until shutdown, rotating on a schedule when given one.
final class DNSService: Service {
    let server: DNSServer
    let address: Endpoint
    let rotator: AddressRotator
    let every: Duration?
    let onReady: @Sendable (Endpoint) -> Void
    let onRotation: @Sendable (AddressRotator.Rotation) -> Void

    init(
        server: DNSServer, at address: Endpoint, rotator: AddressRotator, every: Duration?, onReady: @escaping @Sendable (Endpoint) -> Void,
        onRotation: @escaping @Sendable (AddressRotator.Rotation) -> Void
    ) {
        self.server = server
        self.address = address
        self.rotator = rotator
        self.every = every
        self.onReady = onReady
        self.onRotation = onRotation
    }

    func run() async throws {
        onReady(try await server.start(at: address))
        if let every {
            // Shutdown cancels the schedule at once, mid-sleep.
            try? await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: every)
                    for app in self.rotator.applications {
                        guard case .dynamic = app.edgeIPs, let rotated = try? await self.rotator.rotate(app.id) else { continue }
                        self.onRotation(rotated)
                    }
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        await server.stop()
    }
}
