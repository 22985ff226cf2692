import MoonbaseJSON
import MoonbaseModel

/// `RecordStore` for async code, from `store.async`.
///
/// Record writes (`insert`, `replace`, `delete`, with or without an outbox event) and the outbox's
/// writes (`recordAttempts`, `requeue`, `purgeSucceeded`) are queued and the task suspends until
/// their transaction commits, so a thread is never held waiting for the writer and concurrent
/// requests are committed together. The other calls are
/// short reads or rare collection changes: they run directly, as the blocking versions do. Not cancellable once queued: a shared transaction
/// cannot be interrupted for one caller.
public struct AsyncRecordStore: Sendable {
    /// The store this view writes to.
    public let store: RecordStore

    /// See `RecordStore.insert(_:)`.
    public func insert(_ record: Record) async throws(StoreError) -> Record {
        try await store.batcher.perform(try store.insertOperation(record, outbox: nil)).record
    }

    /// See `RecordStore.replace(collection:id:fields:ifVersion:)`.
    public func replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64) async throws(StoreError) -> Record {
        try await store.batcher.perform(
            try store.replaceOperation(collection: collection, id: id, fields: fields, ifVersion: ifVersion, outbox: nil)
        ).record
    }

    /// See `RecordStore.delete(collection:id:ifVersion:)`.
    public func delete(collection: String, id: String, ifVersion: Int64) async throws(StoreError) -> Record {
        try await store.batcher.perform(
            try store.deleteOperation(collection: collection, id: id, ifVersion: ifVersion, outbox: nil)
        ).record
    }

    /// See `RecordStore.record(collection:id:)`.
    public func record(collection: String, id: String) async throws(StoreError) -> Record {
        try store.record(collection: collection, id: id)
    }

    /// See `RecordStore.list(collection:page:perPage:sort:filters:)`.
    public func list(collection: String, page: Int, perPage: Int, sort: RecordSort,
                     filters: [RecordFilter] = []) async throws(StoreError) -> RecordPage {
        try store.list(collection: collection, page: page, perPage: perPage, sort: sort, filters: filters)
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

    // MARK: - Outbox

    /// See `RecordStore.insert(_:outbox:)`.
    public func insert(_ record: Record, outbox: OutboxRequest?)
        async throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: NewDeliveries)
    {
        try await store.batcher.perform(try store.insertOperation(record, outbox: outbox)).tuple
    }

    /// See `RecordStore.replace(collection:id:fields:ifVersion:outbox:)`.
    public func replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64, outbox: OutboxRequest?)
        async throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: NewDeliveries)
    {
        try await store.batcher.perform(
            try store.replaceOperation(collection: collection, id: id, fields: fields, ifVersion: ifVersion, outbox: outbox)
        ).tuple
    }

    /// See `RecordStore.delete(collection:id:ifVersion:outbox:)`.
    public func delete(collection: String, id: String, ifVersion: Int64, outbox: OutboxRequest?)
        async throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: NewDeliveries)
    {
        try await store.batcher.perform(
            try store.deleteOperation(collection: collection, id: id, ifVersion: ifVersion, outbox: outbox)
        ).tuple
    }

    /// See `RecordStore.recordAttempts(_:)`; queued with the record writes.
    public func recordAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError) {
        guard !outcomes.isEmpty else { return }
        try await store.batcher.perform(RecordStore.recordAttemptsOperation(outcomes))
    }

    /// See `RecordStore.requeue(deliveryID:)`.
    public func requeue(deliveryID: Int64) async throws(StoreError) -> Delivery {
        try await store.batcher.perform(RecordStore.requeueOperation(deliveryID))
    }

    /// See `RecordStore.purgeSucceeded(before:batchSize:)`.
    public func purgeSucceeded(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        return try await store.batcher.perform(RecordStore.purgeOperation(before: cutoff, batchSize: batchSize))
    }

    /// See `RecordStore.unfinishedDeliveries()`.
    public func unfinishedDeliveries() async throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)] {
        try store.unfinishedDeliveries()
    }

    /// See `RecordStore.unfinishedDeliveries(from:events:)`.
    public func unfinishedDeliveries(from: Int64, events limit: Int)
        async throws(StoreError) -> (deliveries: [(delivery: Delivery, event: OutboxEvent)], next: Int64?)
    {
        try store.unfinishedDeliveries(from: from, events: limit)
    }

    /// See `RecordStore.deliveries(_:)`.
    public func deliveries(_ filter: DeliveryFilter) async throws(StoreError) -> [Delivery] {
        try store.deliveries(filter)
    }

    /// See `RecordStore.delivery(id:)`.
    public func delivery(id: Int64) async throws(StoreError) -> Delivery {
        try store.delivery(id: id)
    }

    /// See `RecordStore.attempts(deliveryID:)`.
    public func attempts(deliveryID: Int64) async throws(StoreError) -> [DeliveryAttempt] {
        try store.attempts(deliveryID: deliveryID)
    }

    /// See `RecordStore.event(sequence:)`.
    public func event(sequence: Int64) async throws(StoreError) -> OutboxEvent {
        try store.event(sequence: sequence)
    }
}
