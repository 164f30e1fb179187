import EdgeNet
import Foundation
import Testing

/// Children start with no signal blocked and none ignored, whatever the starting thread had
/// (the threads of Swift's concurrency pool block most signals, and SIGPIPE is ignored in this
/// process): so SIGTERM ends them.
@Suite struct ChildProcessTests {
    /// The signal masks /proc gives for the process that prints them.
    static func masks(of command: [String]) async throws -> (blocked: UInt64, ignored: UInt64) {
        let child = try ChildProcess(command, output: .pipe)
        let printed = String(decoding: (try child.output?.readToEnd()) ?? Data(), as: UTF8.self)
        _ = await child.exited()
        func mask(_ name: String) -> UInt64? {
            printed.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
        }
        return (try #require(mask("SigBlk"), "\(printed)"), try #require(mask("SigIgn"), "\(printed)"))
    }

    @Test func aChildHasNoSignalBlockedOrIgnored() async throws {
        // This test runs on a pool thread: it blocks signals itself, so the check means something.
        let (blocked, ignored) = try await Self.masks(of: ["/bin/cat", "/proc/self/status"])
        #expect(blocked == 0, "blocked: \(String(blocked, radix: 16))")
        // Signals 1-31; 32 and 33 are the C library's own, left as they are.
        #expect(ignored & 0x7FFF_FFFF == 0, "ignored: \(String(ignored, radix: 16))")
    }

    @Test func sigtermEndsAChild() async throws {
        let child = try ChildProcess(["/bin/sleep", "30"])
        child.signal(SIGTERM)
        // SIGKILL after 5 s if SIGTERM did not end it; the status says which did.
        await child.end(within: .seconds(5))
        #expect(await child.exited() == SIGTERM)
    }
}
