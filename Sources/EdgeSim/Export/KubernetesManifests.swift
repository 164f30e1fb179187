import EdgeModel
import Foundation

/// A fleet as Kubernetes manifests: the topology and applications in a ConfigMap, the tokens in
/// a Secret, and a privileged pod (a Deployment of one) that runs `edgesim up` in netns mode
/// (runner, DNS, namespaces and emulated links), its API and metrics behind a Service. The edge
/// nodes run in that pod too, or with `nodePods`, in a StatefulSet of node-host pods that the
/// runner reaches by name through a headless Service. Sized from what fleets measure here.
public struct KubernetesManifests: Sendable {
    public struct Options: Sendable {
        /// The Kubernetes namespace everything goes in. Default `edgesim`.
        public var namespace = "edgesim"
        /// An image with edgesim on its PATH and iproute2 (docs/scale-out.md).
        public var image: String
        /// Edge nodes a node-host process holds; nil: edgesim's default for the fleet's size.
        public var nodesPerProcess: Int?
        /// The API's port in the pod and on the Service. Default 8787.
        public var apiPort = 8787
        /// The API's bearer token (a random one when nil).
        public var apiToken: String?
        /// Node-host pods the edge nodes are spread over; nil: the nodes run in the fleet's pod.
        public var nodePods: Int?
        /// The port node-host pods listen for the runner on. Default 7100.
        public var nodeHostPort = 7100

        public init(image: String) {
            self.image = image
        }
    }

    public let topology: Topology
    /// The files as given: put in the ConfigMap byte for byte.
    public let topologyText: String
    public let applicationsText: String?
    public let options: Options

    public init(topology: Topology, topologyText: String, applicationsText: String?, options: Options) {
        self.topology = topology
        self.topologyText = topologyText
        self.applicationsText = applicationsText
        self.options = options
    }

    /// A DNS-1123 name from the topology's name.
    public var name: String {
        let lowered = topology.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
        let trimmed = String(lowered).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return "edgesim-" + String((trimmed.isEmpty ? "fleet" : trimmed).prefix(40))
    }

    public var nodesPerProcess: Int {
        if let pods = options.nodePods { return (topology.edgeNodes.count + pods - 1) / max(1, pods) }
        return max(1, options.nodesPerProcess ?? (topology.edgeNodes.count <= 32 ? 1 : 64))
    }

    /// The node-host pods' addresses as the runner is given them (`--node-hosts`): each pod of
    /// the StatefulSet by its name under the headless Service.
    public var nodeHostAddresses: [String] {
        (0..<(options.nodePods ?? 0)).map { "\(name)-nodes-\($0).\(name)-nodes.\(options.namespace).svc:\(options.nodeHostPort)" }
    }

    /// Memory each node-host pod asks for, in MiB: its process, then each node with its namespace
    /// and tunnel device, rounded up to 64 MiB.
    public var nodePodMemoryMiB: Int {
        let megabytes = 64 + 34 + 0.45 * Double(nodesPerProcess)
        return Int((megabytes / 64).rounded(.up)) * 64
    }

    /// Memory the pod asks for, in MiB: the runner (per host: a namespace's event loop, DNS, links)
    /// and the node-host processes (a process's runtime, then each node), as measured with
    /// `edgesim-bench --workloads fleet` (docs/benchmarks.md), rounded up to 64 MiB.
    public var memoryRequestMiB: Int {
        let hosts = topology.hostNames.count
        let nodes = topology.edgeNodes.count
        var megabytes = 64 + 0.3 * Double(hosts) + 0.05 * Double(topology.links.count)
        if options.nodePods != nil {
            // Only each node's tunnel end is here.
            megabytes += 0.05 * Double(nodes)
        } else {
            let processes = (nodes + nodesPerProcess - 1) / nodesPerProcess
            let perNode = nodesPerProcess == 1 ? 2.0 : 0.15
            megabytes += 34 * Double(processes) + perNode * Double(nodes)
        }
        return Int((megabytes / 64).rounded(.up)) * 64
    }

    /// Every manifest, as one YAML stream.
    public func yaml() -> String {
        let token = options.apiToken ?? (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        func labels(_ indent: Int) -> String {
            "app.kubernetes.io/name: edgesim\n" + String(repeating: " ", count: indent) + "app.kubernetes.io/instance: \(name)"
        }
        var data = "  topology.yaml: \(Self.quoted(topologyText))\n"
        if let applicationsText { data += "  applications.yaml: \(Self.quoted(applicationsText))\n" }
        let pods = options.nodePods != nil
        let nodeHostToken = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let files = ["/etc/edgesim/topology.yaml"] + (applicationsText != nil ? ["--apps", "/etc/edgesim/applications.yaml"] : [])
        var arguments = ["up"] + files + ["--mode", "netns", "--dns-port", "53"]
        arguments +=
            pods
            ? ["--node-hosts", nodeHostAddresses.joined(separator: ","), "--node-host-token", "/etc/edgesim-token/node-host-token"]
            : ["--nodes-per-process", "\(nodesPerProcess)"]
        arguments += [
            "--api", "0.0.0.0:\(options.apiPort)", "--api-public", "--api-token", "$(EDGESIM_API_TOKEN)", "--ready-file",
            "/tmp/edgesim-ready",
        ]
        func listed(_ words: [String], indent: Int) -> String {
            words.map { String(repeating: " ", count: indent) + "- \(Self.quoted($0))" }.joined(separator: "\n")
        }
        let command = listed(["edgesim"] + arguments, indent: 12)
        let tokenMount =
            pods
            ? "\n            - name: node-host-token\n              mountPath: /etc/edgesim-token\n              readOnly: true" : ""
        let tokenVolume =
            pods
            ? "\n        - name: node-host-token\n          secret:\n            secretName: \(name)-tokens\n            items:\n              - key: node-host\n                path: node-host-token"
            : ""
        // Where both kinds of pod find the files (and the node-host token), at the pod spec's indentation.
        let storage = """
                      volumeMounts:
                        - name: files
                          mountPath: /etc/edgesim
                          readOnly: true\(tokenMount)
                  volumes:
                    - name: files
                      configMap:
                        name: \(name)-files\(tokenVolume)
            """
        let memory = memoryRequestMiB
        // Start-up grows with the fleet (7.8 s for 1,000 nodes here); the probes wait for it.
        let startupSeconds = 30 + topology.edgeNodes.count / 10
        return """
            # edgesim fleet '\(topology.name)': \(topology.edgeNodes.count) edge nodes, \(topology.clients.count) clients, \(topology.origins.count) origins, \(topology.links.count) links.
            # Made by `edgesim export kubernetes`; docs/scale-out.md says what runs where.
            apiVersion: v1
            kind: Namespace
            metadata:
              name: \(options.namespace)
            ---
            apiVersion: v1
            kind: ConfigMap
            \(metadata("\(name)-files"))
            data:
            \(data)---
            apiVersion: v1
            kind: Secret
            \(metadata("\(name)-tokens"))
            type: Opaque
            stringData:
              api: \(Self.quoted(token))
              node-host: \(Self.quoted(nodeHostToken))
            ---
            apiVersion: apps/v1
            kind: Deployment
            \(metadata("\(name)"))
            spec:
              replicas: 1
              # One fleet at a time: its namespaces and addresses are the pod's own.
              strategy:
                type: Recreate
              selector:
                matchLabels:
                  app.kubernetes.io/instance: \(name)
              template:
                metadata:
                  labels:
                    \(labels(8))
                  annotations:
                    prometheus.io/scrape: "true"
                    prometheus.io/port: "\(options.apiPort)"
                    prometheus.io/path: /metrics
                spec:
                  terminationGracePeriodSeconds: \(30 + topology.edgeNodes.count / 100)
                  containers:
                    - name: fleet
                      image: \(Self.quoted(options.image))
                      command:
            \(command)
                      env:
                        - name: EDGESIM_API_TOKEN
                          valueFrom:
                            secretKeyRef:
                              name: \(name)-tokens
                              key: api
                      ports:
                        - name: api
                          containerPort: \(options.apiPort)
                          protocol: TCP
                      securityContext:
                        # Network namespaces, TUN devices and routes inside them need it.
                        privileged: true
                      resources:
                        requests:
                          cpu: "1"
                          memory: \(memory)Mi
                        limits:
                          memory: \(memory * 2)Mi
                      startupProbe:
                        exec:
                          command: ["test", "-f", "/tmp/edgesim-ready"]
                        periodSeconds: 2
                        failureThreshold: \(startupSeconds / 2)
                      livenessProbe:
                        tcpSocket:
                          port: api
                        periodSeconds: 10
            \(storage)
            ---
            apiVersion: v1
            kind: Service
            \(metadata("\(name)-api"))
            spec:
              type: ClusterIP
              selector:
                app.kubernetes.io/instance: \(name)
              ports:
                - name: api
                  port: \(options.apiPort)
                  targetPort: api
                  protocol: TCP

            """ + (pods ? nodePodManifests(files: files, storage: storage) : "")
    }

    /// The node-host pods: a headless Service that gives each pod a name, and a StatefulSet
    /// whose pods each wait for the runner (`edgesim node-host --listen`).
    private func nodePodManifests(files: [String], storage: String) -> String {
        let command =
            ["edgesim", "node-host", "--listen", "0.0.0.0:\(options.nodeHostPort)", "--topology"] + files
            + ["--mode", "netns", "--token-file", "/etc/edgesim-token/node-host-token"]
        let memory = nodePodMemoryMiB
        return """
            ---
            apiVersion: v1
            kind: Service
            \(metadata("\(name)-nodes"))
            spec:
              # Headless: each node-host pod is reached by its own name, as the runner lists them.
              clusterIP: None
              publishNotReadyAddresses: true
              selector:
                app.kubernetes.io/instance: \(name)-nodes
              ports:
                - name: control
                  port: \(options.nodeHostPort)
                  targetPort: control
                  protocol: TCP
            ---
            apiVersion: apps/v1
            kind: StatefulSet
            \(metadata("\(name)-nodes"))
            spec:
              serviceName: \(name)-nodes
              replicas: \(options.nodePods ?? 0)
              # The runner spreads the nodes over every pod at its start: all are wanted at once.
              podManagementPolicy: Parallel
              selector:
                matchLabels:
                  app.kubernetes.io/instance: \(name)-nodes
              template:
                metadata:
                  labels:
                    app.kubernetes.io/name: edgesim
                    app.kubernetes.io/instance: \(name)-nodes
                spec:
                  terminationGracePeriodSeconds: 30
                  containers:
                    - name: node-host
                      image: \(Self.quoted(options.image))
                      command:
            \(command.map { "            - \(Self.quoted($0))" }.joined(separator: "\n"))
                      ports:
                        - name: control
                          containerPort: \(options.nodeHostPort)
                          protocol: TCP
                      securityContext:
                        # The nodes' namespaces and tunnel devices need it.
                        privileged: true
                      resources:
                        requests:
                          cpu: "1"
                          memory: \(memory)Mi
                        limits:
                          memory: \(memory * 2)Mi
                      readinessProbe:
                        tcpSocket:
                          port: control
                        periodSeconds: 5
            \(storage)

            """
    }

    /// An object's metadata block, at the top level of its document.
    private func metadata(_ objectName: String) -> String {
        """
        metadata:
          name: \(objectName)
          namespace: \(options.namespace)
          labels:
            app.kubernetes.io/name: edgesim
            app.kubernetes.io/instance: \(name)
        """
    }

    /// A YAML double-quoted scalar (a JSON string is one).
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
