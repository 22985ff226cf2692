import Foundation
import FuzzChecks
import Testing

/// The fuzz targets' checks on the committed seed corpus and on every input a fuzzing run found
/// failing (`Fuzz/Corpus/…`, crashes saved there as `crash-…`): what fuzzing found stays fixed.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus/json").standardized
    static let queries = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus/query").standardized

    static var inputs: [String] { files(in: corpus) }
    static var queryInputs: [String] { files(in: queries) }

    static func files(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test func theCorporaAreThere() {
        #expect(Self.inputs.count >= 20)
        #expect(Self.queryInputs.count >= 10)
    }

    @Test(arguments: queryInputs)
    func recordQueriesAreBoundedAndRoundTrip(_ name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: Self.queries.appendingPathComponent(name)))
        #expect(FuzzChecks.recordQuery(bytes) == nil)
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
