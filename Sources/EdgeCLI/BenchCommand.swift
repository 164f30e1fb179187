import ArgumentParser
import EdgeModel
import EdgeNet
import EdgeSim
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the fleet (throughput and peers are in Benchmarks/).",
        subcommands: [PathsCommand.self]
    )
}

struct PathsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "How good smart routing's path choice is on a topology, and how fast it moves when a link is cut.",
        discussion: """
            Starts the topology in netns mode (root) with a smart-routed TCP application for every \
            tcp-echo origin, lets the edges' probes settle, then for every (edge node, origin) pair \
            prints the direct round trip, the round trip of the path the edge chose, the best one the \
            topology allows through edge nodes, and the echo round trip measured through the chosen \
            path. A choice is optimal within max(1 ms, 2%) of the best. With --cuts, links on chosen \
            paths are cut one at a time and the time until the edge moves is measured.
            """
    )

    @Argument(help: "The topology file.", completion: .file(extensions: ["yaml", "yml"]))
    var topology: String

    @Option(help: "How long probes run before paths are read (e.g. 10s).")
    var settle = "10s"

    @Option(help: "Links to cut on chosen paths, one after another.")
    var cuts = 0

    @Option(help: "Write the results as JSON here.")
    var json: String?

    @Option(help: "Write a chart of direct, chosen and best round trips here.")
    var svg: String?

    func validate() throws {
        if case .failure(let problem) = Quantity.duration(settle) { throw ValidationError("--settle: \(problem.message)") }
        guard (0...100).contains(cuts) else { throw ValidationError("--cuts must be from 0 to 100") }
    }

    func run() async throws {
        if let status = await PrivateLaunch.relaunch() { throw ExitCode(status) }
        try PrivateLaunch.prepareInside()
        guard HostChecks.canUseNamespaces else {
            printError(
                "error: bench paths needs network namespaces (smart routing measures real paths between them): \(HostChecks.netnsRefusal ?? "")"
            )
            throw ExitCode(2)
        }
        if !PrivateNetwork.isInside {
            for leftover in Leftovers.clean() { printError("removed leftover of an earlier run: \(leftover)") }
        }
        var options = PathBenchmark.Options(topologyPath: topology, executable: HostChecks.executablePath, say: { printError($0) })
        options.settle = try Quantity.duration(settle).get()
        options.cuts = cuts
        let benchmark = PathBenchmark(options: options)
        let task = Task { try await benchmark.run() }
        let signals = SignalWatch([SIGINT, SIGTERM]) { _ in
            printError("interrupted: stopping the fleet and cleaning up")
            task.cancel()
        }
        defer { signals.stop() }
        let report: PathBenchmarkReport
        do {
            report = try await task.value
        } catch let failure as PathBenchmark.Failure {
            printError("error: \(failure)")
            throw ExitCode(2)
        } catch is CancellationError {
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        say(report.table)
        if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
        if let svg { try report.svg.write(toFile: svg, atomically: true, encoding: .utf8) }
    }
}
