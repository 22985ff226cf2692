import MoonbaseJSON
import MoonbaseModel
import RecordStore

/// Record writes straight to a store, with no hooks around them: the write path of tools that run
/// hooks against a throwaway database (`moonbase hooks test --with-db`), where a hook's own
/// `records` writes must work but need not fire further hooks. Updates merge top-level fields, as
/// the REST API's do.
public struct StoreRecordWrites: RecordWriting {
    private let store: any RecordStore

    public init(store: any RecordStore) {
        self.store = store
    }

    public func create(collection: String, body: JSONObject, depth: Int) async throws -> Record {
        try await store.insert(Record.new(collection: collection, fields: body)).record
    }

    public func update(collection: String, id: String, patch: JSONObject, depth: Int) async throws -> Record {
        let old = try await store.record(collection: collection, id: id)
        var fields = old.fields
        fields.merge(Record.droppingSystemFields(patch))
        return try await store.replace(collection: collection, id: id, fields: fields, ifVersion: old.version).record
    }

    public func delete(collection: String, id: String, depth: Int) async throws {
        let old = try await store.record(collection: collection, id: id)
        _ = try await store.delete(collection: collection, id: id, ifVersion: old.version)
    }
}
