import NIOCore
import NIOEmbedded
import Testing

@testable import EdgeProxy

/// The built-in HTTP origin, byte by byte: what it echoes, how it frames bodies, when it closes.
@Suite struct HTTPResponderTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: HTTPResponder())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything the origin wrote so far, as text.
    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func send(_ text: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// The responses in `text`, each as (head, body), by their Content-Length.
    func responses(_ text: String) -> [(head: String, body: String)] {
        var rest = Substring(text)
        var found: [(String, String)] = []
        while let end = rest.range(of: "\r\n\r\n") {
            let head = String(rest[..<end.lowerBound])
            let length =
                head.split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") }.flatMap { Int($0.dropFirst(16)) } ?? 0
            let body = rest[end.upperBound...].utf8.prefix(length)
            found.append((head, String(decoding: body, as: UTF8.self)))
            rest = rest[end.upperBound...].dropFirst(body.count)
        }
        return found
    }

    @Test func echoesTheRequestLineAndEachHeaderTrimmed() throws {
        let channel = try channel()
        try send("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:   10.0.0.1 \t\r\nNoColonHere\r\nEmpty:\r\n\r\n", to: channel)
        let answers = responses(try written(channel))
        #expect(answers.count == 1)
        #expect(answers.first?.head.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(answers.first?.body == "edgesim origin: GET /a?b=1 HTTP/1.1\nHost: x\nX-Forwarded-For: 10.0.0.1\nEmpty: \n")
        #expect(channel.isActive, "kept alive")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func answersPipelinedRequestsInOrderAndHeadsSplitAnywhere() throws {
        let channel = try channel()
        let requests = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"
        for byte in requests.utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        let oneByOne = responses(try written(channel)).map(\.body)
        try send(requests, to: channel)
        let atOnce = responses(try written(channel)).map(\.body)
        let expected = [
            "edgesim origin: GET /1 HTTP/1.1\nHost: a\n", "edgesim origin: GET /2 HTTP/1.1\nHost: b\n", "edgesim origin: GET /3 HTTP/1.1\n",
        ]
        #expect(oneByOne == expected)
        #expect(atOnce == expected)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func readsBodiesByLengthAndChunksBeforeAnswering() throws {
        let channel = try channel()
        try send("POST /up HTTP/1.1\r\ncontent-length: 5\r\n\r\nab", to: channel)
        #expect(try written(channel).isEmpty, "no answer before the body is whole")
        try send("cdePOST /c HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n", to: channel)
        let answers = responses(try written(channel)).map(\.body)
        #expect(
            answers == [
                "edgesim origin: POST /up HTTP/1.1\ncontent-length: 5\nbody: 5 bytes\n",
                "edgesim origin: POST /c HTTP/1.1\nTransfer-Encoding: gzip, Chunked\nbody: 3 bytes\n",
            ])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func closesAfterConnectionCloseAndAfterHTTP10WithoutKeepAlive() throws {
        for (request, closes) in [
            ("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", true), ("GET / HTTP/1.0\r\n\r\n", true),
            ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false), ("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false),
        ] {
            let channel = try channel()
            try send(request, to: channel)
            let head = responses(try written(channel)).first?.head ?? ""
            #expect(head.contains("Connection: close") == closes, "\(request)")
            #expect(channel.isActive == !closes, "\(request)")
            _ = try channel.finish(acceptAlreadyClosed: true)
        }
    }

    @Test func refusesAHeadOverTheLimitAndABrokenChunk() throws {
        let long = try channel()
        try send("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPResponder.headLimit), to: long)
        #expect(try written(long).hasPrefix("HTTP/1.1 431 "))
        #expect(!long.isActive)
        let broken = try channel()
        try send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", to: broken)
        #expect(try written(broken).hasPrefix("HTTP/1.1 400 "))
        #expect(!broken.isActive)
    }
}
