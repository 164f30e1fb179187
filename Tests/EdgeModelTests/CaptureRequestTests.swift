import EdgeModel
import Testing

/// `capture:` on a scenario: one mapping or a list, hosts checked against the topology.
@Suite struct CaptureRequestTests {
    let scratch = Scratch()

    func validate(_ capture: String) -> (ValidationResult, String) {
        scratch.write("topo/small.yaml", smallTopology)
        let path = scratch.write(
            "scenarios/capture.yaml",
            """
            name: capture
            topology: ../topo/small.yaml
            timeout: 30s
            \(capture)
            """)
        return (ConfigLoader().validate(path), path)
    }

    @Test func oneOrManyCapturesAreRead() throws {
        let (one, path) = validate("capture: {host: client-1, file: out/c1.pcapng, filter: \"tcp port 7000\"}")
        #expect(one.errors.isEmpty, "\(one.issues)")
        #expect(
            try ConfigLoader().loadScenario(path).value.captures == [
                CaptureRequest(host: "client-1", file: "out/c1.pcapng", filter: "tcp port 7000")
            ])
        let (many, manyPath) = validate("capture:\n  - {host: edge-a, file: a.pcapng}\n  - {host: echo, file: echo.pcapng}")
        #expect(many.errors.isEmpty, "\(many.issues)")
        #expect(try ConfigLoader().loadScenario(manyPath).value.captures.map(\.host) == ["edge-a", "echo"])
    }

    @Test(
        arguments: [
            ("capture: {host: nowhere, file: x.pcapng}", "capture.host", "'nowhere' is not a client, edge node or origin"),
            ("capture: {host: edge-a}", "capture.file", "missing required field"),
            ("capture: {host: edge-a, file: x.pcapng, filter: \"\"}", "capture.filter", "capture filter"),
            (
                "capture:\n  - {host: edge-a, file: x.pcapng}\n  - {host: edge-b, file: x.pcapng}", "capture[1].file",
                "written by another capture"
            ),
            ("capture: {host: edge-a, file: x.pcapng, snaplen: 9}", "capture.snaplen", "unknown field"),
        ] as [(String, String, String)])
    func mistakesAreNamed(text: String, field: String, message: String) throws {
        let (result, _) = validate(text)
        let error = try #require(result.onlyError(), "\(result.errors)")
        #expect(error.field == field)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func commandLineCaptures() {
        #expect(CaptureRequest(argument: "paris:/tmp/p.pcapng") == CaptureRequest(host: "paris", file: "/tmp/p.pcapng"))
        #expect(CaptureRequest(argument: "paris") == nil)
        #expect(CaptureRequest(argument: ":x.pcapng") == nil)
    }
}
