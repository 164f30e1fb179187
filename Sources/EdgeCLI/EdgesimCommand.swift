import ArgumentParser

/// The root command: it only lists the subcommands.
public struct EdgesimCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "edgesim",
        abstract: "Run a simulated anycast edge network on one Linux machine and test against it.",
        discussion: """
            Topologies (topologies/*.yaml) describe edge nodes, clients, origins and links; scenarios \
            (scenarios/*.yaml) say which applications run, what traffic and faults happen, and what \
            must hold at the end. Application files use the public Spectrum API's JSON shape.
            """,
        version: "0.1.0",
        subcommands: [
            ValidateCommand.self, RunCommand.self, UpCommand.self, ExportCommand.self, BenchCommand.self, CleanCommand.self,
            NodeCommand.self,
            NodeHostCommand.self, DNSCommand.self,
            OriginCommand.self, PcapCommand.self, ReplayCommand.self, ExecCommand.self,
        ]
    )

    public init() {}
}

/// Runs the command line and returns the process exit status: 0 success, 1 a failed check or
/// invalid input file, 2 a usage error.
public enum EdgesimMain {
    /// The arguments this process was given (without the program), to start it again elsewhere.
    nonisolated(unsafe) static var invocation: [String] = []

    public static func run(_ arguments: [String]? = nil) async -> Int32 {
        invocation = arguments ?? Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            command = try EdgesimCommand.parseAsRoot(arguments)
        } catch {
            let code = EdgesimCommand.exitCode(for: error)
            let message = EdgesimCommand.fullMessage(for: error)
            if code == .success {
                print(message)
                return 0
            }
            printError(message)
            return 2
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            // Help and version requests arrive here as errors too.
            let message = EdgesimCommand.fullMessage(for: error)
            switch EdgesimCommand.exitCode(for: error) {
            case .success:
                print(message)
                return 0
            case .validationFailure:
                printError(message)
                return 2
            default:
                printError(message)
                return 1
            }
        }
    }
}
