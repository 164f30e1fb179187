import EdgeModel
import Foundation
import Testing

@Suite struct DocumentReaderTests {
    func read(_ text: String, limits: DocumentLimits = DocumentLimits()) throws(ConfigIssue) -> ConfigNode {
        try DocumentReader.read(Array(text.utf8), file: "doc.yaml", limits: limits)
    }

    func issue(_ text: String, limits: DocumentLimits = DocumentLimits()) -> ConfigIssue? {
        do {
            _ = try read(text, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func yamlKeepsLinesAndPlainScalarsAsWritten() throws {
        let root = try read("a: 1\nb:\n  - off\n  - \"off\"\nc: ~\n")
        #expect(root["a"]?.scalar == "1")
        #expect(root["a"]?.location.line == 1)
        let items = try #require(root["b"]?.sequence)
        #expect(items.map(\.location.line) == [3, 4])
        guard case .scalar("off", quoted: false) = items[0].value, case .scalar("off", quoted: true) = items[1].value else {
            Issue.record("expected plain and quoted 'off', got \(items)")
            return
        }
        #expect(root["c"]?.isNull == true)
    }

    @Test func jsonIsReadWithLines() throws {
        let root = try read("{\n  \"protocol\": \"tcp/22\",\n  \"list\": [1, 2]\n}")
        #expect(root["protocol"]?.scalar == "tcp/22")
        #expect(root["protocol"]?.location.line == 2)
        #expect(root["list"]?.sequence?.count == 2)
    }

    @Test func aliasesWithinBudgetExpand() throws {
        let root = try read("base: &b {x: 1}\ncopy: *b\n")
        #expect(root["copy"]?["x"]?.scalar == "1")
    }

    @Test func billionLaughsIsRefusedQuickly() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        let found = issue(text)
        #expect(found?.message.contains("expands to more than 200000 values") == true, "\(String(describing: found))")
    }

    @Test func aliasAsMappingKeyOfAHugeValueIsRefused() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            text += "a\(level): &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", "))]\n"
        }
        text += "? *a8\n: 1\n"
        #expect(issue(text) != nil)
    }

    @Test func deepNestingIsRefused() {
        let flow = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        // libyaml's own scanner limit or ours, whichever is met first; either way a clear refusal.
        #expect(issue(flow)?.message.lowercased().contains("nesting") == true)
        var block = ""
        for depth in 0..<100 { block += String(repeating: " ", count: depth * 2) + "k:\n" }
        #expect(issue(block)?.message.contains("nesting is deeper than 64") == true)
    }

    @Test func oversizedInputIsRefusedBeforeParsing() {
        let found = issue(String(repeating: "a", count: 2000), limits: DocumentLimits(maxBytes: 1000))
        #expect(found?.message == "file is 2000 bytes; the limit is 1000 bytes")
    }

    /// The largest documents the limits allow are read whole: every item of a 199,999-value
    /// list in order, and a duplicate key at the end of a 60,000-key mapping found with the
    /// line of its first use. (How fast: Benchmarks, "Document read".)
    @Test func theLargestDocumentsAreReadWhole() throws {
        let list = try read("[" + (0..<199_999).map(String.init).joined(separator: ",") + "]")
        #expect(list.sequence?.count == 199_999)
        #expect(list.sequence?.last?.scalar == "199998")
        let keys = (0..<60_000).map { "k\($0): \($0)" }
        #expect(try read(keys.joined(separator: "\n")).entries?.count == 60_000)
        let repeated = issue((keys + ["k7: again"]).joined(separator: "\n"))
        #expect(repeated?.message == "key 'k7' appears twice in one mapping (first at line 8)")
        #expect(repeated?.location.line == 60_001)
    }

    @Test func manyValuesAreRefused() {
        let text = "[" + Array(repeating: "1", count: 1000).joined(separator: ",") + "]"
        #expect(issue(text, limits: DocumentLimits(maxNodes: 500))?.message.contains("more than 500 values") == true)
    }

    @Test(arguments: [
        ("a: 1\na: 2\n", "key 'a' appears twice in one mapping (first at line 1)", 2),
        ("a: 1\n---\nb: 2\n", "more than one YAML document", 2),
        ("? [1, 2]\n: x\n", "a mapping key must be a plain string", 1),
        ("a: *missing\n", "alias *missing refers to no anchor", 1),
        ("a: [1, 2\nb: 3\n", "not valid YAML or JSON", 0),
        ("{\"a\": 1,, }", "not valid YAML or JSON", 0),
        ("", "file is empty", 0),
    ])
    func malformedDocumentsGiveClearErrors(text: String, message: String, line: Int) {
        let found = issue(text)
        #expect(found?.message.contains(message) == true, "got \(String(describing: found))")
        if line > 0 { #expect(found?.location.line == line) }
    }

    @Test func invalidUTF8IsAnError() {
        let bytes: [UInt8] = Array("a: ".utf8) + [0xff, 0xfe, 0x41]
        #expect(throws: ConfigIssue.self) { try DocumentReader.read(bytes, file: "bad.yaml") }
    }
}
