import EdgeModel
import Foundation

/// A fleet as Kubernetes manifests: the topology and applications in a ConfigMap, the API token
/// in a Secret, and one privileged pod (a Deployment of one) that runs `edgesim up` in netns mode
/// with everything inside it (runner, DNS, node-host processes, namespaces and emulated links),
/// its API and metrics behind a Service. Sized from what a fleet of that size measures here.
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
        max(1, options.nodesPerProcess ?? (topology.edgeNodes.count <= 32 ? 1 : 64))
    }

    /// Memory the pod asks for, in MiB: the runner (per host: a namespace's event loop, DNS, links)
    /// and the node-host processes (a process's runtime, then each node), as measured with
    /// `edgesim-bench --workloads fleet` (docs/benchmarks.md), rounded up to 64 MiB.
    public var memoryRequestMiB: Int {
        let hosts = topology.hostNames.count
        let nodes = topology.edgeNodes.count
        let processes = (nodes + nodesPerProcess - 1) / nodesPerProcess
        let perNode = nodesPerProcess == 1 ? 2.0 : 0.15
        let megabytes = 64 + 0.3 * Double(hosts) + 0.05 * Double(topology.links.count) + 34 * Double(processes) + perNode * Double(nodes)
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
        var arguments = [
            "up", "/etc/edgesim/topology.yaml", "--mode", "netns", "--dns-port", "53", "--nodes-per-process", "\(nodesPerProcess)",
            "--api", "0.0.0.0:\(options.apiPort)", "--api-public", "--api-token", "$(EDGESIM_API_TOKEN)", "--ready-file",
            "/tmp/edgesim-ready",
        ]
        if applicationsText != nil { arguments.insert(contentsOf: ["--apps", "/etc/edgesim/applications.yaml"], at: 2) }
        let command = (["edgesim"] + arguments).map { "            - \(Self.quoted($0))" }.joined(separator: "\n")
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
            metadata:
              name: \(name)-files
              namespace: \(options.namespace)
              labels:
                \(labels(4))
            data:
            \(data)---
            apiVersion: v1
            kind: Secret
            metadata:
              name: \(name)-api
              namespace: \(options.namespace)
              labels:
                \(labels(4))
            type: Opaque
            stringData:
              token: \(Self.quoted(token))
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: \(name)
              namespace: \(options.namespace)
              labels:
                \(labels(4))
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
                              name: \(name)-api
                              key: token
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
                      volumeMounts:
                        - name: files
                          mountPath: /etc/edgesim
                          readOnly: true
                  volumes:
                    - name: files
                      configMap:
                        name: \(name)-files
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: \(name)-api
              namespace: \(options.namespace)
              labels:
                \(labels(4))
            spec:
              type: ClusterIP
              selector:
                app.kubernetes.io/instance: \(name)
              ports:
                - name: api
                  port: \(options.apiPort)
                  targetPort: api
                  protocol: TCP

            """
    }

    /// A YAML double-quoted scalar (a JSON string is one).
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
