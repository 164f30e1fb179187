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
        abstract: "Kubernetes manifests that run the topology (and applications): one fleet pod, or with its nodes in node-host pods.",
        discussion: """
            Writes a Namespace, a ConfigMap with the files, a Secret with the tokens, a Deployment \
            of one privileged pod running `edgesim up` in netns mode (its memory request sized from \
            the fleet's nodes, hosts and links), and a Service for its API and /metrics. With \
            --node-pods N, the edge nodes run in a StatefulSet of N node-host pods instead (each \
            `edgesim node-host --listen`, named through a headless Service), which the fleet's pod \
            drives over the pod network and reaches through per-node tunnels. The files are checked \
            first, as `edgesim validate` checks them. docs/scale-out.md says what runs where.
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

    @Option(help: "Spread the edge nodes over this many node-host pods (default: they run in the fleet's pod).")
    var nodePods: Int?

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
        if layout.nodeHosts != nil || layout.nodeHostToken != nil {
            throw ValidationError("the manifests name their own node hosts: give --node-pods instead of --node-hosts")
        }
        if let nodePods {
            guard (1...1000).contains(nodePods) else { throw ValidationError("--node-pods must be between 1 and 1000") }
            if layout.nodesPerProcess != nil { throw ValidationError("--node-pods decides where nodes run: leave out --nodes-per-process") }
        }
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
        if let nodePods, nodePods > loaded.edgeNodes.count {
            printError("error: --node-pods \(nodePods) for \(loaded.edgeNodes.count) edge nodes: give at most one pod a node")
            throw ExitCode(2)
        }
        var options = KubernetesManifests.Options(image: image)
        options.nodePods = nodePods
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
            if let nodePods {
                printError(
                    "wrote \(output): \(manifests.name) with \(loaded.edgeNodes.count) edge nodes in \(nodePods) node-host pods (up to \(manifests.nodesPerProcess) each, \(manifests.nodePodMemoryMiB) MiB requested each), \(manifests.memoryRequestMiB) MiB requested for the fleet's pod"
                )
            } else {
                printError(
                    "wrote \(output): \(manifests.name) with \(loaded.edgeNodes.count) edge nodes, \(manifests.nodesPerProcess) a node-host process, \(manifests.memoryRequestMiB) MiB requested"
                )
            }
        } else {
            print(text, terminator: "")
        }
    }
}
