import ArgumentParser
import EdgeModel
import EdgeSim
import Foundation

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a fleet out for somewhere else to run it.",
        subcommands: [KubernetesExportCommand.self]
    )
}

struct KubernetesExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubernetes",
        abstract: "Kubernetes manifests that run the topology (and applications) as one fleet pod.",
        discussion: """
            Writes a Namespace, a ConfigMap with the files, a Secret with the API token, a Deployment \
            of one privileged pod running `edgesim up` in netns mode (its memory request sized from \
            the fleet's nodes, hosts and links), and a Service for its API and /metrics. The files \
            are checked first, as `edgesim validate` checks them. docs/scale-out.md says what runs \
            where and what does not yet.
            """
    )

    @Argument(help: "The topology file.", completion: .file(extensions: ["yaml", "yml"]))
    var topology: String

    @Option(help: "Applications to run on it.")
    var apps: String?

    @Option(help: "An image with edgesim on its PATH and iproute2.")
    var image: String

    @Option(help: "The Kubernetes namespace.")
    var namespace = "edgesim"

    @OptionGroup var layout: FleetLayoutOptions

    @Option(help: "The API's bearer token (default: a random one).")
    var apiToken: String?

    @Option(help: "Write the manifests to this file (default: standard output).")
    var output: String?

    func validate() throws {
        let dns1123 =
            namespace.count <= 63 && namespace.first?.isLetter == true
            && namespace.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "-" } && namespace.last != "-"
        guard dns1123 else {
            throw ValidationError("--namespace must be a DNS label: lowercase letters, digits and '-', starting with a letter")
        }
        guard !image.isEmpty, !image.contains(where: \.isWhitespace) else { throw ValidationError("--image must be an image reference") }
        if let apiToken, apiToken.isEmpty || apiToken.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--api-token must be non-empty and without spaces")
        }
    }

    func run() async throws {
        if let wrong = wrongKind(topology, expected: .topology) {
            printError(wrong)
            throw ExitCode(2)
        }
        let loader = ConfigLoader()
        let loaded: Topology
        do {
            let read = try loader.loadTopology(topology)
            for warning in read.warnings { printError(warning.description) }
            loaded = read.value
            if let apps {
                let applications = try loader.loadApplications(apps, topologyHosts: true)
                for warning in applications.warnings { printError(warning.description) }
                _ = try FleetPlan(
                    scenario: Scenario(topology: loaded, topologyPath: topology, applications: applications.value), mode: .netns)
            }
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitCode(2)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        var options = KubernetesManifests.Options(image: image)
        options.namespace = namespace
        options.nodesPerProcess = layout.nodesPerProcess
        options.apiToken = apiToken
        let manifests = KubernetesManifests(
            topology: loaded, topologyText: try String(contentsOfFile: topology, encoding: .utf8),
            applicationsText: try apps.map { try String(contentsOfFile: $0, encoding: .utf8) }, options: options)
        let text = manifests.yaml()
        if let output {
            do {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                printError("error: cannot write \(output): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            printError(
                "wrote \(output): \(manifests.name) with \(loaded.edgeNodes.count) edge nodes, \(manifests.nodesPerProcess) a node-host process, \(manifests.memoryRequestMiB) MiB requested"
            )
        } else {
            print(text, terminator: "")
        }
    }
}
