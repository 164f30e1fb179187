import ArgumentParser
import EdgeModel
import EdgeSim
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a scenario start to finish: bring the fleet up, play the timeline, check the expectations, tear down.",
        discussion: """
            Progress goes to standard error, the summary to standard output. Exit status: 0 when every \
            check passes, 1 when one fails (or the run is interrupted or cannot start), 2 for invalid \
            input. Leftovers of an earlier run that was killed are removed first.
            """
    )

    @Argument(help: "The scenario file.", completion: .file(extensions: ["yaml", "yml"]))
    var scenario: String

    @Option(help: "netns, loopback or auto (the scenario's own mode when not given).")
    var mode: String?

    @Option(help: "Write the report as JSON to this file.")
    var report: String?

    @Option(help: "Write the checks as JUnit XML to this file.")
    var junit: String?

    @Option(help: "Write the report as a self-contained HTML page (checks, latency, served-by and timeline charts) to this file.")
    var html: String?

    @Option(help: "Port of the fleet's DNS responder (default 53 as root, else 5300).")
    var dnsPort: UInt16?

    @OptionGroup var layout: FleetLayoutOptions

    @Flag(help: "Also print what the node processes log.")
    var verbose = false

    @Option(
        help:
            "Play the timeline again and again, on the same fleet, until this long has passed (e.g. 30m for a soak); the checks cover every pass."
    )
    var duration: String?

    @Option(
        help:
            "Write what crosses a host (client, edge node or origin) to a pcapng file: HOST:FILE (repeatable). Netns mode records the host's interfaces; loopback mode, what the fabric carries to and from it."
    )
    var capture: [String] = []

    func validate() throws {
        if let mode, RunMode(rawValue: mode) == nil { throw ValidationError("--mode must be netns, loopback or auto") }
        for entry in capture where CaptureRequest(argument: entry) == nil {
            throw ValidationError("--capture takes HOST:FILE, not '\(entry)'")
        }
        if let duration {
            switch Quantity.duration(duration) {
            case .failure(let problem): throw ValidationError("--duration: \(problem.message)")
            case .success(let value) where value <= .zero: throw ValidationError("--duration must be above zero, not \(duration)")
            case .success: break
            }
        }
    }

    func run() async throws {
        if let status = await PrivateLaunch.relaunch() { throw ExitCode(status) }
        try PrivateLaunch.prepareInside()
        let (loaded, mode, port) = try FleetStart.prepare(scenario: scenario, mode: self.mode.flatMap(RunMode.init), dnsPort: dnsPort)

        let verbose = self.verbose
        let runner: ScenarioRunner
        do {
            var options = ScenarioRunner.Options(
                mode: mode, executable: HostChecks.executablePath, scenarioPath: URL(fileURLWithPath: scenario).path,
                dnsPort: port, say: { printError($0) },
                nodeLog: { node, line in if verbose { printError("[\(node)] \(line)") } },
                duration: duration.flatMap { try? Quantity.duration($0).get() },
                captures: capture.compactMap(CaptureRequest.init(argument:)), nodesPerProcess: layout.nodesPerProcess)
            options.nodeHosts = layout.hosts
            options.nodeHostToken = try layout.token()
            runner = try ScenarioRunner(scenario: loaded, options: options)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let task = Task { await runner.run() }
        let signals = SignalWatch([SIGINT, SIGTERM]) { signal in
            printError("\(signal == SIGINT ? "interrupt" : "terminate"): stopping the run and cleaning up")
            task.cancel()
        }
        let result = await task.value
        signals.stop()
        say(result.text())
        if let report {
            guard FileManager.default.createFile(atPath: report, contents: result.json()) else {
                printError("error: cannot write the report to \(report)")
                throw ExitCode(1)
            }
        }
        if let junit {
            guard FileManager.default.createFile(atPath: junit, contents: Data(result.junit().utf8)) else {
                printError("error: cannot write JUnit XML to \(junit)")
                throw ExitCode(1)
            }
        }
        if let html {
            guard FileManager.default.createFile(atPath: html, contents: Data(result.html().utf8)) else {
                printError("error: cannot write the HTML report to \(html)")
                throw ExitCode(1)
            }
        }
        if result.outcome != .passed { throw ExitCode(1) }
    }
}

/// Runs a handler on SIGINT/SIGTERM instead of dying, until stopped.
// Immutable after init, and dispatch sources may be cancelled from any thread.
final class SignalWatch: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    init(_ signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    func stop() {
        for source in sources { source.cancel() }
    }
}
