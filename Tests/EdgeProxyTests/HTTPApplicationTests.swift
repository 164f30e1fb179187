import EdgeModel
import Foundation
import NIOCore
import Testing

@testable import EdgeProxy

/// http and https applications on a live node, asked by curl: the origin's answer comes back, the
/// origin saw the client's address in the headers edgesim adds, one kept-alive origin
/// connection serves several requests, and an origin that is down is a 502.
@Suite(.enabled(if: Curl.path != nil || !ExternalProcess.mayBeMissing("curl"), "curl is not installed (scripts/setup installs it)"))
struct HTTPApplicationTests {
    func curl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ExternalProcess.runAside(try #require(Curl.path), ["--silent", "--show-error", "--max-time", "10"] + arguments)
    }

    @Test func anHTTPSApplicationAnswersCurlAndTheOriginSeesTheClient() async throws {
        let fixture = try EdgeTLSTests.Fixture(appID: "web")
        let origin = TCPOrigin(responder: .http)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        var app = application("web", "tcp/443", origins: ["tcp://\(originEndpoint)"])
        app.dns = PublicName(type: .cname, name: EdgeTLSTests.name)
        app.tls = .flexible
        app.trafficType = .https
        let edge = Loopback.address()
        let node = fixture.node(app, at: edge)
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }

        let url = "https://\(EdgeTLSTests.name)/"
        let (status, output) = try await curl([
            "--cacert", fixture.caFile, "--resolve", "\(EdgeTLSTests.name):443:\(edge)", "--interface", "127.0.0.1", url, url + "second",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.contains("edgesim origin: GET / HTTP/1.1") && output.contains("edgesim origin: GET /second HTTP/1.1"), "\(output)")
        #expect(output.contains("CF-Connecting-IP: 127.0.0.1"), "\(output)")
        #expect(output.contains("X-Forwarded-For: 127.0.0.1"), "\(output)")
        #expect(output.contains("X-Forwarded-Proto: https"), "\(output)")
        #expect(origin.connections.count == 1, "both requests went over one kept-alive origin connection")
        let request = try #require(await node.events.first { $0.event == .request && $0.message == "GET /second" })
        #expect(request.status == 200 && request.bytesOut > 0 && request.origin == originEndpoint.description)
    }

    @Test func anHTTPApplicationWithItsOriginDownAnswers502() async throws {
        let closed = Loopback.address()
        var app = application("plain", "tcp/80", origins: ["tcp://\(closed):9"])
        app.trafficType = .http
        let edge = Loopback.address()
        let node = EdgeNode(applications: [app], listen: [edge])
        _ = try await node.start()
        defer { Task { await node.stop() } }
        let (status, output) = try await curl(["--include", "http://\(edge)/missing"])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("HTTP/1.1 502 Bad Gateway"), "\(output)")
        let request = try #require(await node.events.first { $0.event == .request })
        #expect(request.status == 502 && request.message?.hasPrefix("GET /missing") == true)
    }
}

enum Curl {
    static let path = ExternalProcess.find("curl")
}
