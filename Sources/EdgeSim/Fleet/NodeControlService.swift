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
            let reply: NodeControl.Output
            switch request.op {
            case .start, .stop, .kill, .freeze, .thaw:
                reply = NodeControl.Output(reply: request.id, error: "\(request.op.rawValue) is for node-host processes")
            default:
                reply = await NodeRequests.answer(request, node: node, certificateFolder: certificateFolder)
            }
            // Events recorded before the reply go out before it.
            node.events.flush()
            try? output.writeAll(NodeControl.encode(reply))
        }
    }
}

/// What a node does with a control request about what it serves, in an `edgesim node` or a
/// node-host process alike.
public enum NodeRequests {
    public static func answer(_ request: NodeControl.Request, node: EdgeNode, certificateFolder: String?) async -> NodeControl.Output {
        let addresses = request.addresses.compactMap { IPAddress($0) }
        switch request.op {
        case .ping:
            return NodeControl.Output(reply: request.id, error: nil)
        case .routes:
            var reply = NodeControl.Output(reply: request.id, error: node.smartRouter == nil ? "no smart routing on this node" : nil)
            reply.routes = node.smartRouter?.report()
            return reply
        case .define:
            return NodeControl.Output(reply: request.id, error: define(request, node: node, certificateFolder: certificateFolder))
        case .remove:
            return NodeControl.Output(reply: request.id, error: await node.remove(request.app) ? nil : "no application \(request.app)")
        default:
            break
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
            default:
                problem = "\(request.op.rawValue) is not a request about what a node serves"
            }
        }
        return NodeControl.Output(reply: request.id, error: problem)
    }

    /// Checks an application as a file's would be (TLS files included) and adds or changes it.
    private static func define(_ request: NodeControl.Request, node: EdgeNode, certificateFolder: String?) -> String? {
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
}
