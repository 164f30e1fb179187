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

    /// Bodies by length and chunked, and HTTP/1.0, through an http application: curl on one
    /// side, the built-in origin (which counts the body it read) on the other.
    @Test func bodiesAndHTTP10PassThrough() async throws {
        let origin = TCPOrigin(responder: .http)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        var app = application("plain", "tcp/80", origins: ["tcp://\(originEndpoint)"])
        app.trafficType = .http
        let edge = Loopback.address()
        let node = EdgeNode(applications: [app], listen: [edge])
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-test-body-\(UUID().uuidString)")
        try Data(randomBytes(50_000)).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let posted = try await curl(["--data-binary", "@\(file.path)", "http://\(edge)/up"])
        #expect(posted.status == 0 && posted.output.contains("edgesim origin: POST /up HTTP/1.1"), "\(posted.output)")
        #expect(posted.output.contains("Content-Length: 50000") && posted.output.contains("body: 50000 bytes"), "\(posted.output)")
        let chunked = try await curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file.path)", "http://\(edge)/chunks"])
        #expect(chunked.output.contains("Transfer-Encoding: chunked") && chunked.output.contains("body: 50000 bytes"), "\(chunked.output)")
        let old = try await curl(["--http1.0", "--include", "http://\(edge)/old"])
        #expect(old.output.contains("edgesim origin: GET /old HTTP/1.1"), "forwarded as HTTP/1.1 on a kept-alive connection: \(old.output)")
        #expect(old.output.contains("Connection: close"), "\(old.output)")
        let upload = try #require(await node.events.first { $0.event == .request && $0.message == "POST /chunks" })
        #expect(upload.bytesIn == 50_000 && upload.status == 200)

        // A request shaped to smuggle another past a proxy is answered by the edge and not
        // forwarded.
        let smuggled = try await TCPTestClient.exchange(
            with: Endpoint(edge, 80),
            sending: Array(
                "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\n\r\n".utf8))
        let answer = String(decoding: smuggled.received, as: UTF8.self)
        #expect(
            answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n") && answer.contains("both Content-Length and Transfer-Encoding"), "\(answer)")
        // Its event was written before the edge closed; nothing was forwarded before it.
        let refused = try #require(node.events.events.last { $0.event == .request })
        #expect(refused.status == 400 && refused.message?.contains("both Content-Length and Transfer-Encoding") == true, "\(refused)")
        #expect(!node.events.events.contains { $0.message?.contains("/hidden") == true || $0.message == "POST /" })
    }

    /// An origin that does not speak HTTP (an echo server sends the request back): the client
    /// gets a 502 at once and keeps its connection; the next request is tried afresh.
    @Test func anOriginThatDoesNotSpeakHTTPIsA502() async throws {
        let origin = TCPOrigin(responder: .echo)
        let originEndpoint = try await origin.start(address: Loopback.address())[0]
        var app = application("plain", "tcp/80", origins: ["tcp://\(originEndpoint)"])
        app.trafficType = .http
        let edge = Loopback.address()
        let node = EdgeNode(applications: [app], listen: [edge])
        _ = try await node.start()
        defer {
            Task {
                await node.stop()
                await origin.stop()
            }
        }
        let (status, output) = try await curl(["--include", "http://\(edge)/a", "http://\(edge)/b"])
        #expect(status == 0, "\(output)")
        #expect(output.components(separatedBy: "HTTP/1.1 502 Bad Gateway").count - 1 == 2, "\(output)")
        #expect(output.contains("the origin's response could not be read"), "\(output)")
        let events = node.events.events.filter { $0.event == .request }
        #expect(events.map(\.status) == [502, 502] && events.map { $0.message?.prefix(6) } == ["GET /a", "GET /b"], "\(events)")
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
