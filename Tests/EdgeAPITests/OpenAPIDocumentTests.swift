import EdgeAPI
import Foundation
import Testing

@Suite struct OpenAPIDocumentTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/EdgeAPI")

    /// `GET /a/:b/\(action)` as the document writes it: `get /a/{b}/{action}`.
    static func registeredRoutes() throws -> Set<String> {
        var routes: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: sources.path) + ["Dashboard/Dashboard.swift"]
        where file.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: /router\.(get|post|put|delete)\("([^"]+)"\)/) {
                let path = String(match.2).replacing(/:([a-z_]+)/) { "{\($0.1)}" }.replacing(/\\\(([a-z]+)\)/) { "{\($0.1)}" }
                routes.insert("\(match.1) \(path)")
            }
            if text.contains("router.get(RouterPath(Self.streamPath))") { routes.insert("get /edgesim/v1/stream") }
        }
        return routes
    }

    /// The operations the document lists, as `method path`.
    static func documentedRoutes() -> Set<String> {
        var routes: Set<String> = []
        var path: String?
        for line in String(decoding: APIServer.openAPIDocument, as: UTF8.self).split(separator: "\n") {
            if line == "components:" { break }
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
            if let path, let method = ["get", "post", "put", "delete"].first(where: { line == "    \($0):" }) {
                routes.insert("\(method) \(path)")
            }
        }
        return routes
    }

    @Test func everyRouteTheServerHasIsDocumentedAndNothingElse() throws {
        let registered = try Self.registeredRoutes()
        #expect(registered.count >= 20, "\(registered.sorted())")
        let documented = Self.documentedRoutes()
        #expect(registered.subtracting(documented).isEmpty, "not documented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented but not served: \(documented.subtracting(registered).sorted())")
    }

    @Test func anIndependentValidatorAcceptsTheDocument() throws {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import openapi_spec_validator"]
        check.standardError = FileHandle.nullDevice
        try check.run()
        check.waitUntilExit()
        guard check.terminationStatus == 0 else {
            try #require(ProcessInfo.processInfo.environment["CI"] != "true", "openapi-spec-validator comes from scripts/setup --tests")
            print("skipped: Python's openapi-spec-validator is not installed (scripts/setup --tests installs it)")
            return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgesim-openapi-\(UUID().uuidString).yaml")
        try Data(APIServer.openAPIDocument).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let validator = Process()
        validator.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        validator.arguments = ["python3", "-m", "openapi_spec_validator", file.path]
        let output = Pipe()
        validator.standardOutput = output
        validator.standardError = output
        try validator.run()
        let said = String(decoding: try output.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
        validator.waitUntilExit()
        #expect(validator.terminationStatus == 0, "\(said)")
        #expect(said.contains(": OK"), "\(said)")
    }
}
