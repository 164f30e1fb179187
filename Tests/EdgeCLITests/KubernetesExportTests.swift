import Foundation
import Testing

/// `edgesim export kubernetes`: manifests the Kubernetes schemas accept, carrying the files as
/// given, and a clear error for files that do not read.
@Suite struct KubernetesExportTests {
    /// Runs the Python on the PATH (the one scripts/setup installs packages for).
    static func python(_ arguments: [String]) throws -> EdgesimProcess.Finished {
        try EdgesimProcess.run(["python3"] + arguments, program: "/usr/bin/env")
    }

    /// An applications file for `topologies/metro-1000.yaml`, the topology's path, and where
    /// the manifests go.
    static func metroFiles(in folder: URL) throws -> (apps: URL, topology: String, manifests: String) {
        let apps = folder.appendingPathComponent("apps.yaml")
        try """
        - id: echo
          protocol: tcp/7000
          dns: {type: CNAME, name: echo.metro.example}
          origin_direct: ["tcp://origin-fra:7000"]
        """.write(to: apps, atomically: true, encoding: .utf8)
        let topology = EdgesimProcess.repository.appendingPathComponent("topologies/metro-1000.yaml").path
        return (apps, topology, folder.appendingPathComponent("fleet.yaml").path)
    }

    static func export(_ topology: String, apps: URL, to manifests: String, _ extra: [String] = []) throws -> EdgesimProcess.Finished {
        try EdgesimProcess.run(
            ["export", "kubernetes", topology, "--apps", apps.path, "--image", "registry.example/edgesim:1", "--namespace", "lab"] + extra
                + ["--output", manifests])
    }

    /// The manifests pass the Kubernetes schemas (`kubernetes-validate --strict`), every resource.
    static func validate(_ manifests: String, resources: Int, including resource: String) throws {
        guard hasValidator else {
            #expect(ProcessInfo.processInfo.environment["CI"] != "true", "scripts/setup --tests installs kubernetes-validate")
            print("skipped: kubernetes-validate is not installed (scripts/setup --tests)")
            return
        }
        let validated = try python(["-m", "kubernetes_validate", "--strict", manifests])
        #expect(validated.status == 0, "\(validated.output)\(validated.errors)")
        let said = validated.output + validated.errors
        #expect(said.components(separatedBy: "passed for resource").count - 1 == resources, "\(said)")
        #expect(said.contains("passed for resource \(resource)"), "\(said)")
    }

    static var hasValidator: Bool { (try? python(["-c", "import kubernetes_validate"]))?.status == 0 }

    @Test func aThousandNodeFleetExportsAsManifestsTheSchemasAccept() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-k8s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (apps, topology, manifests) = try Self.metroFiles(in: folder)
        let run = try Self.export(topology, apps: apps, to: manifests)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("edgesim-metro-1000 with 1000 edge nodes, 64 a node-host process"), "\(run.errors)")

        // The documents as Kubernetes reads them: the files byte for byte, the command that starts the fleet.
        let summary = try Self.python(
            [
                "-c",
                """
                import json, sys, yaml
                docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
                byKind = {d["kind"]: d for d in docs}
                pod = byKind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
                print(json.dumps({"kinds": [d["kind"] for d in docs], "namespaces": sorted({d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs}),
                  "topology": byKind["ConfigMap"]["data"]["topology.yaml"], "apps": byKind["ConfigMap"]["data"]["applications.yaml"],
                  "command": pod["command"], "memory": pod["resources"]["requests"]["memory"], "privileged": pod["securityContext"]["privileged"]}))
                """, manifests,
            ])
        #expect(summary.status == 0, "\(summary.errors)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(summary.output.utf8)) as? [String: Any])
        #expect(parsed["kinds"] as? [String] == ["Namespace", "ConfigMap", "Secret", "Deployment", "Service"])
        #expect(parsed["namespaces"] as? [String] == ["lab"])
        #expect(parsed["topology"] as? String == (try String(contentsOfFile: topology, encoding: .utf8)))
        #expect(parsed["apps"] as? String == (try String(contentsOf: apps, encoding: .utf8)))
        let command = parsed["command"] as? [String] ?? []
        #expect(
            command.starts(with: ["edgesim", "up", "/etc/edgesim/topology.yaml", "--apps", "/etc/edgesim/applications.yaml"]), "\(command)")
        #expect(command.contains("--nodes-per-process") && command.contains("64"), "\(command)")
        #expect(parsed["privileged"] as? Bool == true)
        // Sized from the measured costs: more than the 955 MiB a thousand nodes took here, within a few GiB.
        let memory = Int((parsed["memory"] as? String ?? "").dropLast(2)) ?? 0
        #expect((1024...4096).contains(memory), "\(parsed["memory"] ?? "")")

        try Self.validate(manifests, resources: 5, including: "deployment/edgesim-metro-1000")
    }

    /// With --node-pods: a StatefulSet of node-host pods behind a headless Service, and a runner
    /// whose --node-hosts names every one of those pods by the name the Service gives it; both
    /// read the same files and the same token.
    @Test func nodePodsExportAsAStatefulSetTheRunnerNamesPodByPod() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-k8s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (apps, topology, manifests) = try Self.metroFiles(in: folder)
        let run = try Self.export(topology, apps: apps, to: manifests, ["--node-pods", "4"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("edgesim-metro-1000 with 1000 edge nodes in 4 node-host pods (up to 250 each"), "\(run.errors)")

        let summary = try Self.python(
            [
                "-c",
                """
                import json, sys, yaml
                docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
                byName = {(d["kind"], d["metadata"]["name"]): d for d in docs}
                runner = byName[("Deployment", "edgesim-metro-1000")]["spec"]["template"]["spec"]
                sts = byName[("StatefulSet", "edgesim-metro-1000-nodes")]
                pod = sts["spec"]["template"]["spec"]
                headless = byName[("Service", sts["spec"]["serviceName"])]
                def token(spec):
                    mount = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "node-host-token"][0]
                    volume = [v for v in spec["volumes"] if v["name"] == "node-host-token"][0]["secret"]
                    return [mount["mountPath"], volume["secretName"], volume["items"][0]["key"], volume["items"][0]["path"]]
                print(json.dumps({"kinds": [d["kind"] for d in docs], "runner": runner["containers"][0]["command"],
                  "host": pod["containers"][0]["command"], "replicas": sts["spec"]["replicas"], "headless": headless["spec"]["clusterIP"],
                  "selects": (sts["spec"]["template"]["metadata"]["labels"] | headless["spec"]["selector"]) == sts["spec"]["template"]["metadata"]["labels"],
                  "port": pod["containers"][0]["ports"][0]["containerPort"], "privileged": pod["containers"][0]["securityContext"]["privileged"],
                  "tokens": [token(runner), token(pod)], "secrets": sorted(byName[("Secret", "edgesim-metro-1000-tokens")]["stringData"])}))
                """, manifests,
            ])
        #expect(summary.status == 0, "\(summary.errors)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(summary.output.utf8)) as? [String: Any])
        #expect(parsed["kinds"] as? [String] == ["Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Service", "StatefulSet"])
        #expect(parsed["replicas"] as? Int == 4)
        #expect(parsed["headless"] as? String == "None")
        #expect(parsed["selects"] as? Bool == true)
        #expect(parsed["privileged"] as? Bool == true)
        let runner = parsed["runner"] as? [String] ?? []
        let hosts = runner.firstIndex(of: "--node-hosts").map { runner[$0 + 1].split(separator: ",").map(String.init) } ?? []
        #expect(hosts == (0..<4).map { "edgesim-metro-1000-nodes-\($0).edgesim-metro-1000-nodes.lab.svc:7100" }, "\(runner)")
        #expect(!runner.contains("--nodes-per-process"))
        let host = parsed["host"] as? [String] ?? []
        #expect(
            host == [
                "edgesim", "node-host", "--listen", "0.0.0.0:7100", "--topology", "/etc/edgesim/topology.yaml", "--apps",
                "/etc/edgesim/applications.yaml", "--mode", "netns", "--token-file", "/etc/edgesim-token/node-host-token",
            ], "\(host)")
        #expect(parsed["port"] as? Int == 7100)
        // The runner gives the token file the hosts were started with: one Secret key, mounted alike.
        let tokens = parsed["tokens"] as? [[String]] ?? []
        #expect(tokens.count == 2 && tokens[0] == tokens[1], "\(tokens)")
        #expect(runner.firstIndex(of: "--node-host-token").map { runner[$0 + 1] } == tokens.first.map { "\($0[0])/\($0[3])" })
        #expect(parsed["secrets"] as? [String] == ["api", "node-host"])

        try Self.validate(manifests, resources: 7, including: "statefulset/edgesim-metro-1000-nodes")
    }

    @Test(arguments: [
        (["--node-pods", "0"], "--node-pods must be between 1 and 1000"),
        (["--node-pods", "4", "--nodes-per-process", "8"], "leave out --nodes-per-process"),
        (["--node-hosts", "a:1"], "give --node-pods instead of --node-hosts"),
        (["--node-pods", "4"], "--node-pods 4 for 3 edge nodes"),
    ])
    func nodePodsThatCannotWorkAreRefused(_ extra: [String], _ message: String) throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-k8s-\(UUID().uuidString).yaml").path
        let run = try EdgesimProcess.run(
            ["export", "kubernetes", EdgesimProcess.repository.appendingPathComponent("topologies/lab-3.yaml").path, "--image", "e:1"]
                + extra + ["--output", output])
        #expect(run.status != 0)
        #expect(run.errors.contains(message), "\(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func anApplicationNamingNoHostOfTheTopologyIsRefusedAndNothingIsWritten() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-k8s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let apps = folder.appendingPathComponent("apps.yaml")
        try "- id: echo\n  protocol: tcp/7000\n  dns: {type: CNAME, name: e.example}\n  origin_direct: [\"tcp://nowhere:7000\"]\n".write(
            to: apps, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("fleet.yaml").path
        let run = try EdgesimProcess.run([
            "export", "kubernetes", EdgesimProcess.repository.appendingPathComponent("topologies/lab-3.yaml").path, "--apps", apps.path,
            "--image", "edgesim:1", "--output", output,
        ])
        #expect(run.status == 2)
        #expect(run.errors.contains("app echo: origin host nowhere is not in the topology"), "\(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
