import EdgeSim
import Foundation
import Hummingbird
import NIOCore

/// The live dashboard at `/`, and the stream it follows: the fleet's state (`FleetState`) as a
/// Server-Sent Event twice a second.
struct Dashboard: Sendable {
    static let streamPath = "/edgesim/v1/stream"
    /// A stream ends after this many updates (an hour); EventSource opens the next by itself.
    static let updatesPerStream = 7200
    let controller: FleetController

    func add(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/edgesim/v1/state") { _, _ in
            envelope(.ok, SpectrumEnvelope.success(await FleetState.snapshot(controller)))
        }
        router.get(RouterPath(Self.streamPath)) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    for _ in 0..<Self.updatesPerStream {
                        let state = await FleetState.snapshot(controller)
                        let data = (try? JSONSerialization.data(withJSONObject: state, options: [.sortedKeys])) ?? Data("{}".utf8)
                        var buffer = ByteBuffer(string: "data: ")
                        buffer.writeBytes(data)
                        buffer.writeString("\n\n")
                        try await writer.write(buffer)
                        // The update period, not a wait for something to happen.
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    try await writer.finish(nil)
                })
        }
    }
}
