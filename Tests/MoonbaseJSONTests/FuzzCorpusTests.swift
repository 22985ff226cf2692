import Foundation
import JSONFuzzChecks
import Testing

/// The fuzz targets' checks on the committed seed corpus and on every input a fuzzing run found
/// failing (`Fuzz/Corpus/json`, crashes saved there as `crash-…`): what fuzzing found stays fixed.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus/json").standardized

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []).sorted()
    }

    @Test func theCorpusIsThere() {
        #expect(Self.inputs.count >= 20)
    }

    @Test(arguments: inputs)
    func parserAgreesWithFoundation(_ name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.corpus.appendingPathComponent(name)))
        #expect(FuzzChecks.parser(bytes) == nil)
    }

    @Test(arguments: inputs)
    func luaBridgeIsTheIdentity(_ name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.corpus.appendingPathComponent(name)))
        #expect(FuzzChecks.luaBridge(bytes, state: FuzzChecks.makeBridgeState()) == nil)
    }
}
