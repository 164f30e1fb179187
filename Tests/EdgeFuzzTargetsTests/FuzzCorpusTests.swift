import EdgeFuzzTargets
import Foundation
import Testing

/// Every input the fuzzers keep (Fuzz/Corpus) and every input that once broke a parser
/// (Fuzz/Regressions), run through the same checks as under libFuzzer, on every test run.
@Suite struct FuzzCorpusTests {
    static var fuzz: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz")
    }

    static func inputs(_ folder: String, _ target: FuzzTarget) -> [URL] {
        let directory = fuzz.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        return ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? [])
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyKeptInputPasses(target: FuzzTarget) throws {
        let corpus = Self.inputs("Corpus", target)
        #expect(!corpus.isEmpty, "Fuzz/Corpus/\(target.rawValue) holds the seeds")
        for input in corpus + Self.inputs("Regressions", target) {
            let bytes = try [UInt8](Data(contentsOf: input))
            do {
                try target.check(bytes)
            } catch {
                Issue.record("\(target.rawValue) \(input.lastPathComponent): \(error)")
            }
        }
    }
}
