import MoonbaseJSON
import MoonbaseModel
import ServiceLifecycle

/// A storage engine: collections of records, and the outbox that makes after-hooks durable.
///
/// The server and the `records` Lua module use the store only through this protocol, so every
/// engine (SQLite today, PostgreSQL next) behaves the same behind it, and one test suite can run
/// against each. The API is async only: an engine may batch concurrent writes into one
/// transaction (group commit) and suspend its callers meanwhile.
///
/// Every write goes one way, `write(_:outbox:)`: with an `OutboxRequest` the write also stores
/// its event and one pending delivery per target in the same transaction, so a committed write
/// always has them and a refused one never does. The engine hands each committed event to the
/// `CommittedEventSink` it was given when it was made.
///
/// Knows nothing of Lua or hooks: a handler is an opaque key.
public protocol RecordStore: Sendable {
    // MARK: Collections

    /// Creates an empty collection.
    /// - Throws: `invalidCollectionName`, `collectionExists`, `database`.
    func createCollection(name: String) async throws(StoreError) -> CollectionInfo
    /// All collections, ordered by name.
    func collections() async throws(StoreError) -> [CollectionInfo]
    /// Deletes a collection and all its records.
    /// - Throws: `collectionNotFound`, `database`.
    func deleteCollection(name: String) async throws(StoreError)
    /// Whether a collection exists, answered from memory where it can be, so hot paths pay no
    /// query for it (PostgreSQL asks the database about a name it has not seen: another node
    /// may have made it).
    func collectionExists(_ name: String) async throws(StoreError) -> Bool

    // MARK: Records

    /// One record.
    /// - Throws: `collectionNotFound`, `recordNotFound`, `database`.
    func record(collection: String, id: String) async throws(StoreError) -> Record
    /// A page of a collection's records, only those passing every filter. `page` below 1 counts
    /// as 1; `perPage` is clamped to 1...`RecordPage.maxPerPage`. A page past the end has no
    /// items but the right totals.
    /// - Throws: `collectionNotFound`, `database`.
    func list(collection: String, page: Int, perPage: Int, sort: RecordSort, filters: [RecordFilter]) async throws(StoreError) -> RecordPage
    /// Performs `write` and, when `outbox` has targets, stores its event and deliveries in the
    /// same transaction.
    /// - Throws: `collectionNotFound`, `recordNotFound`, `versionConflict` (the record changed
    ///   since the version the caller read), `database` (also for more than `Outbox.maxTargets`
    ///   targets). Nothing is stored when it throws.
    func write(_ write: RecordWrite, outbox: OutboxRequest?) async throws(StoreError) -> WriteResult

    // MARK: Deliveries

    /// Records finished attempts in one transaction: each delivery gets its new status, attempt
    /// count, next attempt time and last error; a failure also gets a row in the attempt log.
    /// Unknown ids are ignored (only deliveries read from the store are ever recorded).
    func recordAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError)
    /// A failed or dead delivery goes back to pending with one more attempt allowed. Returns it as
    /// stored. A delivery whose record has a later delivery to the same handler that succeeded
    /// would bring stale data back: it is refused unless `force`, and then marked `redelivered`.
    /// - Throws: `deliveryNotFound`, `deliveryNotRetryable` for any other status,
    ///   `staleRedelivery`, `database`.
    func requeue(deliveryID: Int64, force: Bool) async throws(StoreError) -> Delivery
    /// Deletes up to `batchSize` events whose deliveries all succeeded, the last of them before
    /// `cutoff` (ISO-8601), oldest first, with their deliveries and attempts. Returns how many
    /// were deleted: call again while it returns `batchSize`.
    func purgeSucceeded(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int
    /// This node's deliveries not finished yet (pending, failed; with `deliveryClaims`, those
    /// it claimed) with their events, by delivery id (commit order), of the events from sequence `from` on, about `limit` events at most. `next` is the
    /// sequence to go on from, or nil when everything from `from` on was read.
    func unfinishedDeliveries(from: Int64, events limit: Int) async throws(StoreError) -> UnfinishedDeliveries
    /// Deliveries matching `filter`, newest first, at most `filter.limit` (clamped to 1...1000).
    func deliveries(_ filter: DeliveryFilter) async throws(StoreError) -> [Delivery]
    /// One delivery.
    /// - Throws: `deliveryNotFound`, `database`.
    func delivery(id: Int64) async throws(StoreError) -> Delivery
    /// Every recorded attempt of a delivery, by attempt number.
    /// - Throws: `deliveryNotFound`, `database`.
    func attempts(deliveryID: Int64) async throws(StoreError) -> [DeliveryAttempt]
    /// One stored event.
    /// - Throws: `database` if there is none (purged, or never stored).
    func event(sequence: Int64) async throws(StoreError) -> OutboxEvent

    /// How this engine shares deliveries among nodes; nil for an engine with one node (SQLite),
    /// whose unfinished deliveries are all its own.
    var deliveryClaims: (any DeliveryClaims)? { get }

    // MARK: Upkeep

    /// The engine's long-running upkeep (SQLite: its WAL checkpointer), for whoever runs the
    /// store for long (the server) to run as services beside its own; they stop with them.
    var upkeep: [any Service] { get }
}

/// A record write: what `RecordStore.write(_:outbox:)` performs.
public enum RecordWrite: Sendable {
    /// Stores a new record (as built by `Record.new`, maybe changed since) with version 1.
    case insert(Record)
    /// Replaces the fields of a record iff its version still equals `ifVersion`; bumps the
    /// version and `updated`.
    case replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64)
    /// Deletes a record iff its version still equals `ifVersion`.
    case delete(collection: String, id: String, ifVersion: Int64)
}

/// What a committed write returns.
public struct WriteResult: Sendable {
    /// The record as stored; for a delete, as it was.
    public var record: Record
    /// The event stored with the write; nil when no outbox (or no target) was asked for.
    public var event: OutboxEvent?
    /// The event's deliveries, all pending (none without an event).
    public var deliveries: NewDeliveries

    init(record: Record, event: OutboxEvent? = nil, deliveries: NewDeliveries = .none) {
        self.record = record
        self.event = event
        self.deliveries = deliveries
    }
}

/// Unfinished deliveries with their events, and where to go on reading (see
/// `RecordStore.unfinishedDeliveries(from:events:)`).
public typealias UnfinishedDeliveries = (deliveries: [(delivery: Delivery, event: OutboxEvent)], next: Int64?)

/// Hears of every event a write stores, right after its transaction commits, in commit order
/// (so the events of one record arrive in the order they happened). Given to an engine when it
/// is made; `committed` runs on the engine's writer and must return quickly.
public protocol CommittedEventSink: Sendable {
    func committed(_ event: OutboxEvent, _ deliveries: NewDeliveries)
}

extension RecordStore {
    public var deliveryClaims: (any DeliveryClaims)? { nil }

    /// `write(.insert(record), outbox:)`.
    public func insert(_ record: Record, outbox: OutboxRequest? = nil) async throws(StoreError) -> WriteResult {
        try await write(.insert(record), outbox: outbox)
    }

    /// `write(.replace(…), outbox:)`; with an outbox the event's `oldData` is the record as it was.
    public func replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64,
                        outbox: OutboxRequest? = nil) async throws(StoreError) -> WriteResult {
        try await write(.replace(collection: collection, id: id, fields: fields, ifVersion: ifVersion), outbox: outbox)
    }

    /// `write(.delete(…), outbox:)`; the result's record is the record as it was, and so are
    /// the event's `data` and `oldData`.
    public func delete(collection: String, id: String, ifVersion: Int64, outbox: OutboxRequest? = nil) async throws(StoreError) -> WriteResult {
        try await write(.delete(collection: collection, id: id, ifVersion: ifVersion), outbox: outbox)
    }

    /// A page without filters.
    public func list(collection: String, page: Int, perPage: Int, sort: RecordSort) async throws(StoreError) -> RecordPage {
        try await list(collection: collection, page: page, perPage: perPage, sort: sort, filters: [])
    }

    /// Every unfinished delivery, in commit order: what start-up takes up again.
    public func unfinishedDeliveries() async throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)] {
        try await unfinishedDeliveries(from: 0, events: .max).deliveries
    }
}
