import ArgumentParser
import EdgeModel
import EdgePcap
import EdgeSim
import Foundation

struct PcapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcap",
        abstract: "Look into capture files before replaying them.",
        subcommands: [PcapInspectCommand.self]
    )
}

struct PcapInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List a capture's TCP and UDP flows: endpoints, packets and bytes each way, timing, and where each would be replayed.",
        discussion: """
            Reads pcap and pcapng through libpcap (Ethernet with VLAN tags, Linux cooked v1 and v2, \
            raw IP, BSD loopback; IPv4 and IPv6). TCP streams are put back in order; holes, \
            fragments that never became whole and records shorter than their headers are listed \
            as problems with their record numbers. Exit status: 0, 1 for a capture that cannot be \
            read, 2 for a usage error.
            """
    )

    @Argument(help: "The capture file (pcap or pcapng).", completion: .file(extensions: ["pcap", "pcapng", "cap"]))
    var file: String

    @Option(help: "A scenario whose applications the flows are matched with (by transport and edge port).")
    var scenario: String?

    @Option(help: "Only records matching this capture filter (as tcpdump takes, e.g. 'host 198.18.10.1').")
    var filter: String?

    @Option(help: "Seconds of silence after which a UDP conversation counts as a new flow.")
    var udpIdle: Double = 60

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard udpIdle > 0 else { throw ValidationError("--udp-idle must be above zero") }
    }

    func run() async throws {
        var applications: [Application]?
        if let scenario {
            do {
                applications = try ConfigLoader().loadScenario(scenario).value.applications
            } catch {
                for issue in error.issues { printError(issue.description) }
                throw ExitCode(2)
            }
        }
        let ports = Set((applications ?? []).flatMap { $0.edge.ports.first...$0.edge.ports.last })
        let capture: Capture
        do {
            capture = try Capture(file: file, options: .init(serverPorts: ports, udpIdle: udpIdle, filter: filter))
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let listing = CaptureListing(capture, applications: applications)
        if json {
            try? FileHandle.standardOutput.writeAll(listing.json() + Data("\n".utf8))
        } else {
            say(listing.text(showApplications: applications != nil))
        }
    }
}
