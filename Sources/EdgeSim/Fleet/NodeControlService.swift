import EdgeModel
import EdgeProxy
import Foundation
import ServiceLifecycle

/// The node's end of the control channel: serve and retire requests from standard input, each
/// answered on standard output. Returns when standard input closes (the runner has gone), which
/// shuts the node down, so a runner that dies leaves no node behind.
public final class NodeControlService: Service {
    let node: EdgeNode
    let input: FileHandle
    let output: FileHandle

    /// Where the fleet's issued certificates are, for applications defined later.
    let certificateFolder: String?

    public init(
        node: EdgeNode, certificateFolder: String? = nil, input: FileHandle = .standardInput, output: FileHandle = .standardOutput
    ) {
        self.node = node
        self.certificateFolder = certificateFolder
        self.input = input
        self.output = output
    }

    public func run() async throws {
        for await line in LineStream.lines(of: input) where !line.isEmpty {
            guard let request = NodeControl.request(from: Array(line.utf8)) else {
                try? output.writeAll(NodeControl.encode(NodeControl.Output(reply: -1, error: "not a control request: \(line.prefix(80))")))
                continue
            }
            let addresses = request.addresses.compactMap { IPAddress($0) }
            if request.op == .ping {
                try? output.writeAll(NodeControl.encode(NodeControl.Output(reply: request.id, error: nil)))
                continue
            }
            if request.op == .routes {
                var reply = NodeControl.Output(reply: request.id, error: node.smartRouter == nil ? "no smart routing on this node" : nil)
                reply.routes = node.smartRouter?.report()
                try? output.writeAll(NodeControl.encode(reply))
                continue
            }
            if request.op == .define || request.op == .remove {
                let problem = request.op == .define ? define(request) : await remove(request)
                try? output.writeAll(NodeControl.encode(NodeControl.Output(reply: request.id, error: problem)))
                continue
            }
            var problem: String?
            if addresses.count != request.addresses.count {
                problem = "not an address in \(request.addresses)"
            } else {
                switch request.op {
                case .serve:
                    do {
                        let listeners = try await node.serve(request.app, on: addresses)
                        if listeners.isEmpty, !node.services.contains(where: { $0.app.id == request.app }) {
                            problem = "no application \(request.app) to serve on \(request.addresses)"
                        }
                    } catch {
                        problem = "cannot serve \(request.app) on \(request.addresses): \(error)"
                    }
                case .retire:
                    for address in addresses { await node.retire(request.app, address: address) }
                case .reconcile:
                    for address in node.servedAddresses(request.app) where !addresses.contains(address) {
                        await node.retire(request.app, address: address)
                    }
                    do {
                        _ = try await node.serve(request.app, on: addresses)
                    } catch {
                        problem = "cannot serve \(request.app) on \(request.addresses): \(error)"
                    }
                case .routes, .ping, .define, .remove:
                    break
                }
            }
            try? output.writeAll(NodeControl.encode(NodeControl.Output(reply: request.id, error: problem)))
        }
    }

    /// Checks an application as a file's would be (TLS files included) and adds or changes it.
    private func define(_ request: NodeControl.Request) -> String? {
        guard let text = request.application else { return "define needs an application" }
        let app: Application
        do {
            app = try ConfigLoader().decodeApplication(Array(text.utf8), source: "application \(request.app)", alongside: [])
        } catch {
            return error.issues.map(\.description).joined(separator: "; ")
        }
        if app.tls != .off {
            do {
                _ = try EdgeTLS(app: app, issuedFolder: certificateFolder)
            } catch {
                return "application \(app.id): \(error)"
            }
        }
        node.define(app)
        return nil
    }

    private func remove(_ request: NodeControl.Request) async -> String? {
        await node.remove(request.app) ? nil : "no application \(request.app)"
    }
}
