import MoonbaseJSON

/// `RecordStore` for async code, from `store.async`.
///
/// Record writes (`insert`, `replace`, `delete`) are queued and the task suspends until their
/// transaction commits, so a thread is never held waiting for the writer and concurrent requests
/// are committed together. The other calls are short reads or rare collection changes: they run
/// directly, as the blocking versions do. Not cancellable once queued: a shared transaction
/// cannot be interrupted for one caller.
public struct AsyncRecordStore: Sendable {
    /// The store this view writes to.
    public let store: RecordStore

    /// See `RecordStore.insert(_:)`.
    public func insert(_ record: Record) async throws(StoreError) -> Record {
        try await store.batcher.perform(try store.insertOperation(record))
    }

    /// See `RecordStore.replace(collection:id:fields:ifVersion:)`.
    public func replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64) async throws(StoreError) -> Record {
        try await store.batcher.perform(
            try store.replaceOperation(collection: collection, id: id, fields: fields, ifVersion: ifVersion))
    }

    /// See `RecordStore.delete(collection:id:ifVersion:)`.
    public func delete(collection: String, id: String, ifVersion: Int64) async throws(StoreError) -> Record {
        try await store.batcher.perform(try store.deleteOperation(collection: collection, id: id, ifVersion: ifVersion))
    }

    /// See `RecordStore.record(collection:id:)`.
    public func record(collection: String, id: String) async throws(StoreError) -> Record {
        try store.record(collection: collection, id: id)
    }

    /// See `RecordStore.list(collection:page:perPage:sort:)`.
    public func list(collection: String, page: Int, perPage: Int, sort: RecordSort) async throws(StoreError) -> RecordPage {
        try store.list(collection: collection, page: page, perPage: perPage, sort: sort)
    }

    /// See `RecordStore.createCollection(name:)`.
    public func createCollection(name: String) async throws(StoreError) -> CollectionInfo {
        try store.createCollection(name: name)
    }

    /// See `RecordStore.collections()`.
    public func collections() async throws(StoreError) -> [CollectionInfo] {
        try store.collections()
    }

    /// See `RecordStore.deleteCollection(name:)`.
    public func deleteCollection(name: String) async throws(StoreError) {
        try store.deleteCollection(name: name)
    }
}
