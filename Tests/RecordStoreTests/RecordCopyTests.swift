import MoonbaseJSON
import MoonbaseModel
import MoonbaseTestSupport
import Testing
@testable import RecordStore

/// Copying one store into another (`moonbase copy-data`): SQLite into either engine.
@Suite("Copying records between stores")
struct RecordCopyTests {
    @Test(arguments: Engine.allCases)
    func everyRecordIsCopiedWithItsIdAndTimesAndARerunSkipsThem(target engine: Engine) async throws {
        let source = try await makeSQLiteStore(collections: ["posts", "tags", "empty"])
        var posts: [Record] = []
        for n in 0..<(RecordPage.maxPerPage + 20) { // two pages
            posts.append(try await source.insert(Record.new(collection: "posts", fields: ["n": .int(Int64(n)), "z": "last", "a": "first"]),
                                                 outbox: outbox(["h"])).record)
        }
        let tag = try await insert(source, "tags", ["name": "swift"])
        let changed = try await source.replace(collection: "tags", id: tag.id, fields: ["name": "lua"], ifVersion: 1).record
        let target = try await makeStore(engine, collections: ["tags"])

        var progress: [String: Int] = [:]
        let summary = try await RecordCopy.copy(from: source, to: target) { progress[$0] = $1 }
        #expect(summary == RecordCopy.Summary(collections: 3, records: posts.count + 1, skipped: 0))
        #expect(progress == ["posts": posts.count, "tags": 1, "empty": 0])
        #expect(try await target.collections().map(\.name) == ["empty", "posts", "tags"])
        let copied = try await target.record(collection: "posts", id: posts[517].id)
        #expect(copied == posts[517], "same id, created, updated, fields in their order, version 1")
        #expect(copied.fields.keys == ["n", "z", "a"])
        let copiedTag = try await target.record(collection: "tags", id: tag.id)
        #expect(copiedTag.updated == changed.updated && copiedTag.version == 1 && copiedTag.fields == ["name": "lua"])
        #expect(try await target.unfinishedDeliveries().isEmpty, "no event: no hook runs on the copies")

        // Run again (as after an interruption): everything is there already and left as it is.
        _ = try await target.replace(collection: "tags", id: tag.id, fields: ["name": "edited there"], ifVersion: 1)
        let again = try await RecordCopy.copy(from: source, to: target)
        #expect(again == RecordCopy.Summary(collections: 3, records: 0, skipped: posts.count + 1))
        #expect(try await target.record(collection: "tags", id: tag.id).fields == ["name": "edited there"])
        #expect(try await target.list(collection: "posts", page: 1, perPage: 1, sort: .default).totalItems == posts.count)
    }
}
