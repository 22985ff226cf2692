import GRDB
import MoonbaseModel

// The outbox side of `SQLiteStore`: it only schedules the work, and `OutboxTables` does it.
// Every write goes through the `WriteBatcher`, like record writes, so it shares their
// transactions (group commit) and never holds a thread in async code; reads run on a reader.

extension SQLiteStore {
    // MARK: - Delivery state

    /// Records finished attempts in one transaction: each delivery gets `status`,
    /// `attempts = attempt`, `next_attempt_at`, `last_error = error` (nil after a success) and
    /// `updated = now`; a failure also gets an attempt row. Unknown ids are ignored (the
    /// scheduler only records deliveries it read from the store).
    public func recordAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError) {
        guard !outcomes.isEmpty else { return }
        try await batcher.perform(outboxTables.recordAttempts(outcomes))
    }

    /// A failed or dead delivery goes back to pending (`nextAttemptAt` nil) with one more attempt
    /// allowed (`maxAttempts = max(maxAttempts, attempts + 1)`). Returns it as stored.
    /// - Throws: `deliveryNotFound`, `deliveryNotRetryable` for any other status, `staleRedelivery`, `database`.
    public func requeue(deliveryID: Int64, force: Bool) async throws(StoreError) -> Delivery {
        try await batcher.perform(outboxTables.requeue(deliveryID, force: force))
    }

    /// Deletes up to `batchSize` events whose deliveries all succeeded, the last of them before
    /// `cutoff` (an ISO-8601 timestamp), oldest first, with their deliveries and attempts. An event
    /// with a pending, failed or dead delivery is never touched, nor are its succeeded ones.
    /// Returns how many events were deleted: call again while it returns `batchSize`.
    /// - Throws: `database`, also if `cutoff` is not written as `Timestamp` writes them
    ///   (`2026-11-21T23:38:21.123Z`).
    public func purgeSucceeded(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        return try await batcher.perform(try outboxTables.purge(before: cutoff, batchSize: batchSize))
    }

    // MARK: - Reading the outbox

    /// `unfinishedDeliveries()` of the events from sequence `from` on, about `events` events at
    /// most, so a long backlog can be read a part at a time. `next` is the sequence to go on
    /// from, or nil when everything unfinished from `from` on was read.
    public func unfinishedDeliveries(from: Int64, events limit: Int) async throws(StoreError) -> UnfinishedDeliveries {
        try readOutbox { outbox, db in try outbox.unfinished(from: from, events: limit, db) }
    }

    /// Deliveries matching `filter`, newest first (id descending), at most `filter.limit`
    /// (clamped to 1...1000).
    public func deliveries(_ filter: DeliveryFilter) async throws(StoreError) -> [Delivery] {
        try readOutbox { outbox, db in try outbox.deliveries(filter, db) }
    }

    /// One delivery.
    /// - Throws: `deliveryNotFound`, `database`.
    public func delivery(id: Int64) async throws(StoreError) -> Delivery {
        guard let found = try readOutbox({ outbox, db in try outbox.delivery(id: id, db) }) else { throw .deliveryNotFound(id) }
        return found
    }

    /// Every recorded attempt of a delivery, by attempt number: the failed ones, then the one that
    /// succeeded.
    /// - Throws: `deliveryNotFound`, `database`.
    public func attempts(deliveryID: Int64) async throws(StoreError) -> [DeliveryAttempt] {
        guard let found = try readOutbox({ outbox, db in try outbox.attempts(deliveryID: deliveryID, db) }) else {
            throw .deliveryNotFound(deliveryID)
        }
        return found
    }

    /// One stored event.
    /// - Throws: `database` ("event N not found") if there is none (purged, or never stored).
    public func event(sequence: Int64) async throws(StoreError) -> OutboxEvent {
        guard let found = try readOutbox({ outbox, db in try outbox.event(sequence: sequence, db) }) else {
            throw .database("event \(sequence) not found")
        }
        return found
    }

    /// Rows in the outbox tables (for tests and diagnostics).
    func outboxRowCounts() throws(StoreError) -> (events: Int, deliveries: Int, attempts: Int) {
        try readOutbox { outbox, db in try outbox.rowCounts(db) }
    }

    private func readOutbox<T>(_ body: (OutboxTables, Database) throws -> T) throws(StoreError) -> T {
        try mappingErrors { try writer.read { db in try body(outboxTables, db) } }
    }
}
