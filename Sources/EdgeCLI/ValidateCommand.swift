import ArgumentParser
import EdgeModel
import EdgeSim

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check application, topology and scenario files.",
        discussion: """
            Each file's kind is told from its content (a topology has edge_nodes, a scenario has \
            topology) unless --kind is given. A scenario's topology, application files and \
            captures are checked too. Every error names the file, line, field and reason.
            Exit status: 0 all valid, 1 any invalid, 2 usage error.
            """
    )

    @Argument(help: "Files to check.", completion: .file(extensions: ["yaml", "yml", "json"]))
    var files: [String]

    @Option(help: "Read every file as this kind: applications, topology or scenario.")
    var kind: ConfigKind?

    @Flag(name: .shortAndLong, help: "Print only errors and warnings.")
    var quiet = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one file to check") }
    }

    func run() async throws {
        let validator = FileValidator()
        var invalid = 0
        for file in files {
            let result = validator.validate(file, as: kind)
            for issue in result.issues { print(issue.description) }
            if result.isValid {
                if !quiet { print("ok    \(file): \(result.summary)") }
            } else {
                invalid += 1
                let errors = result.issues.count { $0.severity == .error }
                print("FAIL  \(file): \(errors) error\(errors == 1 ? "" : "s")")
            }
        }
        if files.count > 1, !quiet { print("\(files.count - invalid) valid, \(invalid) invalid") }
        if invalid > 0 { throw ExitCode(1) }
    }
}

extension ConfigKind: ExpressibleByArgument {}
