import EdgeModel
import Foundation
import Testing

/// A file of the wrong kind gets one line saying what it is and what to run instead, and nothing
/// starts.
@Suite struct WrongKindTests {
    static func path(_ file: String) -> String { EdgesimProcess.repository.appendingPathComponent(file).path }

    @Test(arguments: [
        (["run", "topologies/lab-3.yaml"], "is a topology: bring it up with `edgesim up"),
        (["run", "scenarios/apps/smtp-export.json"], "is an applications file: serve it with `edgesim up TOPOLOGY --apps"),
        (["up", "scenarios/lab-echo.yaml"], "is a scenario: run it with `edgesim run"),
        (["up", "topologies/lab-3.yaml", "--apps", "topologies/lab-3.yaml"], "(--apps takes applications)"),
    ])
    func aFileOfAnotherKindIsNamedWithWhatToRun(_ arguments: [String], _ expected: String) throws {
        let resolved = arguments.map { $0.contains("/") ? Self.path($0) : $0 }
        let run = try EdgesimProcess.run(resolved)
        #expect(run.status == 2)
        let lines = run.errors.split(separator: "\n")
        #expect(lines.count == 1, "one line, not a list of unknown fields: \(run.errors)")
        #expect(run.errors.contains(expected), "\(run.errors)")
        #expect(!run.errors.contains("unknown"), "\(run.errors)")
    }
}

extension FleetRuns {
    /// A topology brought up with no applications says how to add some.
    @Suite struct UpWithoutAppsTests {
        @Test func upWithoutApplicationsSaysHowToAddThem() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-noapps-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let ready = folder.appendingPathComponent("ready").path
            let up = Process()
            up.executableURL = URL(fileURLWithPath: EdgesimProcess.executable)
            up.arguments = [
                "up", WrongKindTests.path("topologies/lab-3.yaml"), "--mode", "loopback", "--dns-port", "5300", "--ready-file", ready,
            ]
            let output = Pipe()
            up.standardOutput = output
            up.standardError = FileHandle.nullDevice
            try up.run()
            let watchdog = DispatchWorkItem { kill(up.processIdentifier, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
            defer { watchdog.cancel() }
            #expect(EdgesimProcess.waitUntil(seconds: 30) { FileManager.default.fileExists(atPath: ready) || !up.isRunning })
            kill(up.processIdentifier, SIGINT)
            up.waitUntilExit()
            let printed = String(decoding: try output.fileHandleForReading.readAll(), as: UTF8.self)
            #expect(up.terminationStatus == 0)
            #expect(printed.contains("no applications: give some with --apps FILE"), "\(printed)")
        }
    }
}
