import EdgeModel
import Foundation
import Testing

@testable import EdgeProxy

/// Events leave the recording thread at once: recording never waits for a reader of the output,
/// and every event comes out as one JSON line, in order, by the time `flush` returns.
@Suite struct EventWriterTests {
    func event(_ index: Int) -> ProxyEvent {
        ProxyEvent(
            event: .disconnect, time: Double(index), app: application("echo", "tcp/7", origins: ["tcp://198.51.100.1:7"]), node: "lhr",
            client: Endpoint(IPAddress("198.18.0.3")!, UInt16(truncatingIfNeeded: index)), edge: Endpoint(IPAddress("198.19.0.1")!, 7),
            bytesIn: UInt64(index), bytesOut: 20, durationMs: 1, status: .ok)
    }

    /// Reads the pipe on a thread until it ends; the lines are there once the semaphore is signalled.
    func readLines(from pipe: Pipe) -> (ReadLines, DispatchSemaphore) {
        let lines = ReadLines()
        let read = DispatchSemaphore(value: 0)
        let reading = pipe.fileHandleForReading
        Thread {
            var text = Data()
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                text += chunk
            }
            lines.set(String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init))
            read.signal()
        }.start()
        return (lines, read)
    }

    @Test func recordingDoesNotWaitForTheReaderAndEveryLineComesOutInOrder() throws {
        let pipe = Pipe()
        let log = EventLog(output: pipe.fileHandleForWriting)
        let count = 2_000
        // Far more than a pipe holds (64 KiB) while nobody reads: recorded all the same.
        let recorded = DispatchSemaphore(value: 0)
        Thread {
            for index in 0..<count { log.record(event(index)) }
            recorded.signal()
        }.start()
        #expect(recorded.wait(timeout: .now() + 30) == .success, "recording waited for the pipe's reader")
        #expect(log.count(.disconnect) == count)

        let (lines, read) = readLines(from: pipe)
        log.flush()
        try pipe.fileHandleForWriting.close()
        #expect(read.wait(timeout: .now() + 30) == .success)
        let written = lines.value
        #expect(written.count == count)
        // Each line one JSON object, in the order recorded.
        let bytes = try written.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (object?["bytesIn"] as? NSNumber)?.intValue ?? -1
        }
        #expect(bytes == Array(0..<count))
    }

    /// Many lines go out in one write, but never more than a pipe keeps whole: another writer
    /// of the same pipe (a node's control replies share its standard output) never splits one.
    @Test func linesStayWholeNextToAnotherWriterOfThePipe() throws {
        let pipe = Pipe()
        let log = EventLog(output: pipe.fileHandleForWriting)
        let (lines, read) = readLines(from: pipe)
        let other = DispatchSemaphore(value: 0)
        let control = "{\"control\":\"" + String(repeating: "x", count: 200) + "\"}\n"
        Thread {
            for _ in 0..<2_000 { try? pipe.fileHandleForWriting.write(contentsOf: Data(control.utf8)) }
            other.signal()
        }.start()
        for index in 0..<5_000 { log.record(event(index)) }
        #expect(other.wait(timeout: .now() + 30) == .success)
        log.flush()
        try pipe.fileHandleForWriting.close()
        #expect(read.wait(timeout: .now() + 30) == .success)
        let written = lines.value
        #expect(written.count == 7_000)
        let events = written.filter { !$0.hasPrefix("{\"control\"") }
        #expect(written.count - events.count == 2_000 && written.allSatisfy { !$0.hasPrefix("{\"control\"") || $0 == control.dropLast() })
        let order = try events.map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["bytesIn"] as? NSNumber)?.intValue ?? -1
        }
        #expect(order == Array(0..<5_000), "every event line whole and in order")
    }

    /// The hand-written line decodes to what Foundation's encoder writes, for events with every
    /// optional field and without, and strings that need escaping.
    @Test func aLineSaysWhatJSONEncoderSays() throws {
        var full = event(7)
        full.originEndpoint = Endpoint(IPAddress("2001:db8::1")!, 443)
        full.durationMs = 12.345
        full.originRTTMs = 0.000_01
        full.firstByteMs = 4.25
        full.message = "refused: \"no\" \\ path\n\tat\u{1}once — ünïcode"
        full.via = ["nrt", "sin"]
        full.readsHeld = 3
        full.time = 1_764_547_200.123_456
        var bare = event(0)
        bare.durationMs = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for sample in [full, bare] {
            var line: [UInt8] = []
            sample.appendJSONLine(to: &line)
            #expect(line.last == 0x0A && line.dropLast().contains(0x0A) == false)
            let mine = try JSONSerialization.jsonObject(with: Data(line)) as? NSDictionary
            let theirs = try JSONSerialization.jsonObject(with: try encoder.encode(sample)) as? NSDictionary
            #expect(mine != nil && mine == theirs, "\(String(decoding: line, as: UTF8.self))")
        }
    }

    /// The runner reads the line a node writes back into the same event (one event type from
    /// node to report): every kind, with and without optional fields, an HTTP request's status.
    @Test func aLineReadsBackAsTheSameEvent() throws {
        var full = event(7)
        full.originEndpoint = Endpoint(IPAddress("2001:db8::1")!, 443)
        full.originRTTMs = 2.5
        full.firstByteMs = 7.5
        full.message = "refused: \"no\"\n"
        full.via = ["nrt", "sin"]
        full.readsHeld = 3
        full.statusCode = .originTimeout
        var request = event(1)
        request.event = .request
        request.httpStatus = 404
        var samples = [full, request]
        for kind in ProxyEvent.Kind.allCases where kind != .request {
            var sample = event(2)
            sample.event = kind
            samples.append(sample)
        }
        for sample in samples {
            var line: [UInt8] = []
            sample.appendJSONLine(to: &line)
            #expect(ProxyEvent.decoded(fromJSONLine: line.dropLast()) == sample, "\(String(decoding: line, as: UTF8.self))")
        }
        // Lines that are not events: control replies, a status edgesim has no code for, garbage.
        for other in [#"{"ok":true,"reply":3}"#, #"{"ready":true}"#, "not json", ""] {
            #expect(ProxyEvent.decoded(fromJSONLine: Array(other.utf8)) == nil)
        }
        var line: [UInt8] = []
        full.appendJSONLine(to: &line)
        let unknown = String(decoding: line, as: UTF8.self).replacingOccurrences(of: #""status":522"#, with: #""status":777"#)
        #expect(ProxyEvent.decoded(fromJSONLine: Array(unknown.utf8)) == nil)
    }

    @Test func withoutAnOutputNothingIsWrittenAndFlushReturns() {
        let log = EventLog()
        log.record(event(1))
        log.flush()
        #expect(log.count(.disconnect) == 1)
        #expect(log.events.count == 1)
    }
}

/// Lines read on another thread.
final class ReadLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var value: [String] { lock.withLock { lines } }
    func set(_ value: [String]) { lock.withLock { lines = value } }
}
