import ArgumentParser
import EdgeModel
import EdgeNet
import EdgeSim
import Foundation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a capture against a fleet that `edgesim up` is running.",
        discussion: """
            Each captured client flow is opened for real from the chosen client (inside its \
            namespace in netns mode) to the application's address from the fleet's DNS, with the \
            client's payloads at their captured times; replies are read and compared with the \
            captured ones. Exit status: 0 when every flow completed (and matched), 1 when one did \
            not or the capture or fleet cannot be used, 2 for a usage error.
            """
    )

    @Argument(help: "The capture (pcap or pcapng).", completion: .file(extensions: ["pcap", "pcapng", "cap"]))
    var capture: String

    @Option(help: "The running fleet: the pid `edgesim up` printed, or its folder.")
    var to: String

    @Option(help: "The client host the flows come from.")
    var from: String

    @Option(help: "Send every flow to this application (id or DNS name).")
    var app: String?

    @Option(help: "Captured server port to application, e.g. 53=fleet_dns or 25=mail (repeatable).")
    var map: [String] = []

    @Option(help: "1 is the captured pace, 10 ten times faster, 0 as fast as possible.")
    var speed: Double = 1

    @Option(help: "How replies are checked: none, length or exact.")
    var compare: String = "length"

    @Option(help: "Only records matching this capture filter (as tcpdump takes).")
    var filter: String?

    @Option(help: "Seconds of silence after which a UDP conversation counts as a new flow.")
    var udpIdle: Double = 60

    @Option(help: "Write the results as JSON to this file.")
    var report: String?

    func validate() throws {
        guard (app == nil) != map.isEmpty else { throw ValidationError("give either --app or --map") }
        guard (0...1000).contains(speed) else { throw ValidationError("--speed must be from 0 (as fast as possible) to 1000") }
        guard ReplayStep.Compare(rawValue: compare) != nil else { throw ValidationError("--compare must be none, length or exact") }
        guard udpIdle > 0 else { throw ValidationError("--udp-idle must be above zero") }
        _ = try ports()
    }

    func ports() throws -> [UInt16: String] {
        var ports: [UInt16: String] = [:]
        for entry in map {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let port = UInt16(parts[0]), port > 0, !parts[1].isEmpty else {
                throw ValidationError("--map takes PORT=APPLICATION (or PORT=fleet_dns), not '\(entry)'")
            }
            ports[port] = parts[1]
        }
        return ports
    }

    func run() async throws {
        let fleet: RunningFleet
        do {
            fleet = try RunningFleet.find(to)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        // A fleet in a private network is replayed from inside it: this command again, in there.
        if fleet.privateNetwork == true, !PrivateNetwork.isInside {
            setenv(PrivateNetwork.environmentKey, "1", 1)
            let pid: pid_t
            do {
                pid = try PrivateNetwork.spawn([HostChecks.executablePath] + EdgesimMain.invocation, enteringProcess: fleet.pid)
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            let status = await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: PrivateNetwork.wait(pid)) }.start()
            }
            if status != 0 { throw ExitCode(status) }
            return
        }
        // Applications may be named by id or DNS name, as in scenario files.
        let scenario = try? fleet.description()
        func id(_ reference: String) -> String {
            if reference == ReplayStep.fleetDNS { return reference }
            return scenario?.application(reference)?.id ?? reference
        }
        let target: ReplayStep.Target = try app.map { .application(id($0)) } ?? .ports(ports().mapValues(id))
        let step = ReplayStep(
            capture: URL(fileURLWithPath: capture).path, client: from, target: target, speed: speed,
            compare: ReplayStep.Compare(rawValue: compare)!, filter: filter, udpIdle: .seconds(udpIdle))
        let outcome: LiveReplay.Outcome
        do {
            outcome = try await LiveReplay(fleet: fleet, step: step).run(say: { printError($0) })
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        say(RunReport.replayLines(outcome.rows).joined(separator: "\n"))
        let sent = outcome.results.reduce(0) { $0 + $1.sends }
        let received = outcome.results.reduce(0) { $0 + $1.receives }
        say(
            String(
                format: "%d flows: %d sent and %d received in %.3f s (%.0f packets/s)", outcome.results.count, sent, received,
                outcome.seconds, outcome.packetsPerSecond))
        for note in outcome.notes.prefix(10) { say("note: \(note)") }
        if let report {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(outcome.results)) ?? Data()
            guard FileManager.default.createFile(atPath: report, contents: data) else {
                printError("error: cannot write the report to \(report)")
                throw ExitCode(1)
            }
        }
        if outcome.results.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
