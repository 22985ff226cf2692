import GRDB
import MoonbaseJSON

// The outbox side of `RecordStore`: writes that record their event, and the deliveries log.
// Every write here goes through the `WriteBatcher`, like record writes, so it shares their
// transactions (group commit) and never holds a thread in async code.

extension RecordStore {
    // MARK: - Writes with an event

    /// Stores a new record like `insert(_:)` and, if `outbox` has targets, its `record.created`
    /// event and one pending delivery per target, in the same transaction. Without an outbox (or
    /// targets) nothing else is written and `event` is nil.
    /// - Throws: as `insert(_:)`; `database` also if the event id is already used (nothing is stored).
    public func insert(_ record: Record, outbox: OutboxRequest?)
        throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: [Delivery])
    {
        try batcher.perform(try insertOperation(record, outbox: outbox)).tuple
    }

    /// `replace(collection:id:fields:ifVersion:)` that also records a `record.updated` event (with
    /// the record as it was in `oldData`) and its deliveries, in the same transaction.
    public func replace(collection: String, id: String, fields: JSONObject, ifVersion: Int64, outbox: OutboxRequest?)
        throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: [Delivery])
    {
        try batcher.perform(
            try replaceOperation(collection: collection, id: id, fields: fields, ifVersion: ifVersion, outbox: outbox)
        ).tuple
    }

    /// `delete(collection:id:ifVersion:)` that also records a `record.deleted` event (`data` and
    /// `oldData` both the record as it was) and its deliveries, in the same transaction.
    /// `record` is the record as it was.
    public func delete(collection: String, id: String, ifVersion: Int64, outbox: OutboxRequest?)
        throws(StoreError) -> (record: Record, event: OutboxEvent?, deliveries: [Delivery])
    {
        try batcher.perform(
            try deleteOperation(collection: collection, id: id, ifVersion: ifVersion, outbox: outbox)
        ).tuple
    }

    // MARK: - Delivery state

    /// Records finished attempts in one transaction: each delivery gets `status`,
    /// `attempts = attempt`, `next_attempt_at`, `last_error = error` (nil after a success) and
    /// `updated = now`; a success is kept on the delivery row, a failure also gets an attempt row.
    /// Unknown ids are ignored (the scheduler only records deliveries it read from the store).
    public func recordAttempts(_ outcomes: [AttemptOutcome]) throws(StoreError) {
        guard !outcomes.isEmpty else { return }
        try batcher.perform(Self.recordAttemptsOperation(outcomes))
    }

    /// Marks pending or failed deliveries as running (an attempt has started); other statuses
    /// and unknown ids are left alone. Returns how many changed. Optional: a delivery can be
    /// recorded with `recordAttempts` without having been marked; marking one makes `requeue`
    /// refuse it and shows it as running in the log.
    @discardableResult
    public func markRunning(deliveryIDs: [Int64]) throws(StoreError) -> Int {
        guard !deliveryIDs.isEmpty else { return 0 }
        return try batcher.perform(Self.markRunningOperation(deliveryIDs))
    }

    /// A failed or dead delivery goes back to pending (`nextAttemptAt` nil) with one more attempt
    /// allowed (`maxAttempts = max(maxAttempts, attempts + 1)`). Returns it as stored.
    /// - Throws: `deliveryNotFound`, `deliveryNotRetryable` for any other status, `database`.
    public func requeue(deliveryID: Int64) throws(StoreError) -> Delivery {
        try batcher.perform(Self.requeueOperation(deliveryID))
    }

    /// Puts every running delivery back to pending (at start-up: the attempts that were running
    /// when the process died). Returns how many.
    public func resetRunningDeliveries() throws(StoreError) -> Int {
        try batcher.perform(Self.resetRunningOperation())
    }

    /// Deletes up to `batchSize` succeeded deliveries last updated before `cutoff` (an ISO-8601
    /// timestamp), oldest first, with their attempts, then the events left with no delivery.
    /// Pending, running, failed and dead deliveries (and their events) are never touched.
    /// Returns how many deliveries were deleted: call again while it returns `batchSize`.
    public func purgeSucceeded(before cutoff: String, batchSize: Int) throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        return try batcher.perform(Self.purgeOperation(before: cutoff, batchSize: batchSize))
    }

    // MARK: - Reading the outbox

    /// Deliveries not finished yet (pending, running, failed) with their events, in commit order
    /// (event sequence, then delivery id): what start-up takes up again.
    public func unfinishedDeliveries() throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)] {
        try mappingErrors {
            try writer.read { db in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.unfinished))
                var result: [(delivery: Delivery, event: OutboxEvent)] = []
                // Rows come grouped by event: parse each event's JSON once.
                var last: OutboxEvent?
                while let row = try cursor.next() {
                    let delivery = try Outbox.decodeDelivery(row)
                    if last?.sequence != delivery.eventSequence {
                        last = try Outbox.decodeEvent(row, from: Outbox.deliveryColumnCount)
                    }
                    result.append((delivery, last!))
                }
                return result
            }
        }
    }

    /// Deliveries matching `filter`, newest first (id descending), at most `filter.limit`
    /// (clamped to 1...1000).
    public func deliveries(_ filter: DeliveryFilter) throws(StoreError) -> [Delivery] {
        var arguments: StatementArguments = []
        if let status = filter.status { arguments += [status.rawValue] }
        if let handler = filter.handler { arguments += [handler] }
        if let collection = filter.collection { arguments += [collection] }
        arguments += [min(max(filter.limit, 1), 1000)]
        let sql = OutboxSQL.listDeliveries(status: filter.status != nil, handler: filter.handler != nil,
                                           collection: filter.collection != nil)
        return try mappingErrors {
            try writer.read { db in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
                var result: [Delivery] = []
                while let row = try cursor.next() {
                    result.append(try Outbox.decodeDelivery(row))
                }
                return result
            }
        }
    }

    /// One delivery.
    /// - Throws: `deliveryNotFound`, `database`.
    public func delivery(id: Int64) throws(StoreError) -> Delivery {
        let found = try mappingErrors { try writer.read { db in try Outbox.fetchDelivery(db, id: id) } }
        guard let found else { throw .deliveryNotFound(id) }
        return found
    }

    /// Every recorded attempt of a delivery, by attempt number: the failed ones, then the one that
    /// succeeded (kept on the delivery row).
    /// - Throws: `deliveryNotFound`, `database`.
    public func attempts(deliveryID: Int64) throws(StoreError) -> [DeliveryAttempt] {
        let found = try mappingErrors {
            try writer.read { db -> [DeliveryAttempt]? in
                guard try Int64.fetchOne(db.cachedStatement(sql: OutboxSQL.deliveryExists), arguments: [deliveryID]) != nil
                else { return nil }
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.attempts), arguments: [deliveryID])
                var result: [DeliveryAttempt] = []
                while let row = try cursor.next() {
                    result.append(DeliveryAttempt(
                        deliveryID: try row.decode(atIndex: 0), eventID: try row.decode(atIndex: 1),
                        handler: try row.decode(atIndex: 2), attempt: try row.decode(atIndex: 3),
                        succeeded: try row.decode(atIndex: 4), started: try row.decode(atIndex: 5),
                        durationMilliseconds: try row.decode(atIndex: 6), error: try row.decode(atIndex: 7)))
                }
                if let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.lastSuccess), arguments: [deliveryID]) {
                    result.append(DeliveryAttempt(
                        deliveryID: deliveryID, eventID: try row.decode(atIndex: 3), handler: try row.decode(atIndex: 4),
                        attempt: try row.decode(atIndex: 0), succeeded: true, started: try row.decode(atIndex: 1),
                        durationMilliseconds: try row.decode(atIndex: 2), error: nil))
                }
                return result
            }
        }
        guard let found else { throw .deliveryNotFound(deliveryID) }
        return found
    }

    /// One stored event.
    /// - Throws: `database` ("event N not found") if there is none (purged, or never stored).
    public func event(sequence: Int64) throws(StoreError) -> OutboxEvent {
        let found = try mappingErrors {
            try writer.read { db -> OutboxEvent? in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.event), arguments: [sequence])
                return try cursor.next().map { try Outbox.decodeEvent($0, from: 0) }
            }
        }
        guard let found else { throw .database("event \(sequence) not found") }
        return found
    }

    /// Rows in the outbox tables (for tests and diagnostics).
    func outboxRowCounts() throws(StoreError) -> (events: Int, deliveries: Int, attempts: Int) {
        try mappingErrors {
            try writer.read { db in
                let row = try Row.fetchOne(db, sql: """
                    SELECT (SELECT count(*) FROM hook_events), (SELECT count(*) FROM hook_deliveries),
                           (SELECT count(*) FROM hook_attempts)
                    """)!
                return (try row.decode(atIndex: 0), try row.decode(atIndex: 1), try row.decode(atIndex: 2))
            }
        }
    }

    // MARK: - Operations (shared with `AsyncRecordStore`)

    static func recordAttemptsOperation(_ outcomes: [AttemptOutcome]) -> WriteBatcher.Operation<Void> {
        let now = Timestamp.now()
        // The common case, successes, is one UPDATE for all of them: each keeps its attempt on
        // its own row. A failure also gets an attempt row.
        var successes: [UInt8] = [UInt8(ascii: "[")]
        var failures: [AttemptOutcome] = []
        let single = outcomes.count == 1 && outcomes[0].error == nil ? outcomes[0] : nil
        for outcome in outcomes where single == nil {
            guard outcome.error == nil else {
                failures.append(outcome)
                continue
            }
            if successes.count > 1 { successes.append(UInt8(ascii: ",")) }
            successes.append(UInt8(ascii: "["))
            JSONWriter.writeInt(outcome.deliveryID, into: &successes)
            successes.append(UInt8(ascii: ","))
            JSONWriter.writeInt(Int64(outcome.attempt), into: &successes)
            successes.append(UInt8(ascii: ","))
            JSONWriter.writeString(outcome.started, into: &successes)
            successes.append(UInt8(ascii: ","))
            JSONWriter.writeDouble(outcome.durationMilliseconds, into: &successes)
            successes.append(UInt8(ascii: ","))
            JSONWriter.writeString(outcome.status.rawValue, into: &successes)
            successes.append(UInt8(ascii: "]"))
        }
        successes.append(UInt8(ascii: "]"))
        let succeeded = successes.count > 2 ? String(decoding: successes, as: UTF8.self) : nil
        let failed = failures
        return { db in
            if let single { // the plain statement is cheaper than going through JSON
                try db.cachedStatement(sql: OutboxSQL.updateAfterSuccess).execute(arguments: [
                    single.status.rawValue, single.attempt, single.started, single.durationMilliseconds, now, single.deliveryID,
                ])
            }
            if let succeeded {
                try db.cachedStatement(sql: OutboxSQL.updateAfterSuccesses).execute(arguments: [now, succeeded])
            }
            let insert = try db.cachedStatement(sql: OutboxSQL.insertAttempt)
            let fail = try db.cachedStatement(sql: OutboxSQL.updateAfterFailure)
            for outcome in failed {
                try insert.execute(arguments: [
                    outcome.deliveryID, outcome.attempt, false, outcome.started, outcome.durationMilliseconds, outcome.error,
                ])
                try fail.execute(arguments: [
                    outcome.status.rawValue, outcome.attempt, outcome.nextAttemptAt, outcome.error, now, outcome.deliveryID,
                ])
            }
        }
    }

    static func markRunningOperation(_ ids: [Int64]) -> WriteBatcher.Operation<Int> {
        let now = Timestamp.now()
        return { db in
            let statement = try db.cachedStatement(sql: OutboxSQL.markRunning)
            var changed = 0
            for id in ids {
                try statement.execute(arguments: [now, id])
                changed += db.changesCount
            }
            return changed
        }
    }

    static func requeueOperation(_ id: Int64) -> WriteBatcher.Operation<Delivery> {
        let now = Timestamp.now()
        return { db in
            guard let raw = try String.fetchOne(db.cachedStatement(sql: OutboxSQL.deliveryStatus), arguments: [id]) else {
                throw StoreError.deliveryNotFound(id)
            }
            let status = try Outbox.status(raw)
            guard status == .failed || status == .dead else {
                throw StoreError.deliveryNotRetryable(id: id, status: status)
            }
            try db.cachedStatement(sql: OutboxSQL.requeue).execute(arguments: [now, id])
            guard let delivery = try Outbox.fetchDelivery(db, id: id) else {
                throw CorruptOutbox(problem: "delivery \(id) vanished while requeued")
            }
            return delivery
        }
    }

    static func resetRunningOperation() -> WriteBatcher.Operation<Int> {
        let now = Timestamp.now()
        return { db in
            try db.cachedStatement(sql: OutboxSQL.resetRunning).execute(arguments: [now])
            return db.changesCount
        }
    }

    static func purgeOperation(before cutoff: String, batchSize: Int) -> WriteBatcher.Operation<Int> {
        return { db in
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.purgeDeliveries), arguments: [cutoff, batchSize])
            var deleted: [Int64] = []
            var events = Set<Int64>()
            while let row = try cursor.next() {
                events.insert(try row.decode(atIndex: 0))
                deleted.append(try row.decode(atIndex: 1))
            }
            let attempts = try db.cachedStatement(sql: OutboxSQL.deleteAttempts)
            for id in deleted {
                try attempts.execute(arguments: [id]) // its failed attempts, before it finally succeeded
            }
            let orphan = try db.cachedStatement(sql: OutboxSQL.deleteOrphanEvent)
            for sequence in events.sorted() {
                try orphan.execute(arguments: [sequence, sequence])
            }
            return deleted.count
        }
    }
}

/// What a record write returns inside the batcher: the record, and its event if one was asked for.
struct OutboxWrite: Sendable {
    var record: Record
    var event: OutboxEvent? = nil
    var deliveries: [Delivery] = []

    var tuple: (record: Record, event: OutboxEvent?, deliveries: [Delivery]) { (record, event, deliveries) }
}

/// An event a write was asked to record, prepared before the write is queued.
struct PendingEvent: Sendable {
    let id: String
    let type: String
    let collection: String
    let recordID: String
    let timestamp: String
    let targets: [DeliveryTarget]
    /// The deliveries' `created` and `updated`.
    let now: String

    /// nil when there is nothing to record (no request, or no targets).
    init?(_ request: OutboxRequest?, type: String, collection: String, recordID: String,
          timestamp: @autoclosure () -> String) {
        guard let request, !request.targets.isEmpty else { return nil }
        self.id = request.eventID
        self.type = type
        self.collection = collection
        self.recordID = recordID
        self.timestamp = timestamp()
        self.targets = request.targets
        self.now = Timestamp.now()
    }

    static let created = "record.created"
    static let updated = "record.updated"
    static let deleted = "record.deleted"

    /// Stores the event and returns its sequence. Event ids are the caller's (unique by
    /// construction); the store does not pay an index to check them.
    func insertEvent(_ db: Database, dataText: String, oldDataText: String?) throws -> Int64 {
        try db.cachedStatement(sql: OutboxSQL.insertEvent).execute(arguments: [
            id, type, collection, recordID, dataText, oldDataText, timestamp,
        ])
        return db.lastInsertedRowID
    }

    /// Takes back an event stored by `insertEvent` when the record write it was for is refused.
    /// (Its sequence number stays used: sequences may have gaps.)
    func withdrawEvent(_ db: Database, sequence: Int64) throws {
        try db.cachedStatement(sql: OutboxSQL.deleteEvent).execute(arguments: [sequence])
    }

    /// Writes the deliveries of the event stored as `sequence`, once the record write is done: one
    /// statement for all of them (their ids are consecutive: one writer, rowids counting up).
    func finish(_ db: Database, sequence: Int64, record: Record, data: JSONObject, oldData: JSONObject?) throws -> OutboxWrite {
        let maxAttempts = targets.map { max($0.maxAttempts, 1) }
        if targets.count == 1 { // the plain statement is cheaper than going through JSON
            try db.cachedStatement(sql: OutboxSQL.insertDelivery).execute(arguments: [
                sequence, targets[0].handler, collection, recordID, maxAttempts[0], now, now,
            ])
            return written(db, sequence: sequence, record: record, data: data, oldData: oldData, maxAttempts: maxAttempts)
        }
        var list: [UInt8] = [UInt8(ascii: "[")]
        for (position, target) in targets.enumerated() {
            if position > 0 { list.append(UInt8(ascii: ",")) }
            list.append(UInt8(ascii: "["))
            JSONWriter.writeString(target.handler, into: &list)
            list.append(UInt8(ascii: ","))
            JSONWriter.writeInt(Int64(maxAttempts[position]), into: &list)
            list.append(UInt8(ascii: "]"))
        }
        list.append(UInt8(ascii: "]"))
        try db.cachedStatement(sql: OutboxSQL.insertDeliveries).execute(arguments: [
            sequence, collection, recordID, now, now, String(decoding: list, as: UTF8.self),
        ])
        return written(db, sequence: sequence, record: record, data: data, oldData: oldData, maxAttempts: maxAttempts)
    }

    private func written(_ db: Database, sequence: Int64, record: Record, data: JSONObject, oldData: JSONObject?,
                         maxAttempts: [Int]) -> OutboxWrite {
        let first = db.lastInsertedRowID - Int64(targets.count) + 1
        let deliveries = targets.enumerated().map { position, target in
            Delivery(
                id: first + Int64(position), eventSequence: sequence, eventID: id, handler: target.handler,
                collection: collection, recordID: recordID, status: .pending, attempts: 0, maxAttempts: maxAttempts[position],
                nextAttemptAt: nil, lastError: nil, created: now, updated: now)
        }
        let event = OutboxEvent(sequence: sequence, id: id, type: type, collection: collection, recordID: recordID,
                                data: data, oldData: oldData, timestamp: timestamp)
        return OutboxWrite(record: record, event: event, deliveries: deliveries)
    }
}

/// Row decoding and JSON helpers of the outbox.
enum Outbox {
    /// `Record.json` as text, from the fields already serialized for the `records` row: the system
    /// fields are written and the fields' bytes spliced in, instead of serializing them again.
    /// Stored fields never hold a system field name, so the result equals `record.json` serialized.
    static func recordJSON(_ record: Record, fieldsJSON: [UInt8]) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(fieldsJSON.count + 96)
        buffer.append(contentsOf: #"{"id":"#.utf8)
        JSONWriter.writeString(record.id, into: &buffer)
        buffer.append(contentsOf: #","collection":"#.utf8)
        JSONWriter.writeString(record.collection, into: &buffer)
        buffer.append(contentsOf: #","created":"#.utf8)
        JSONWriter.writeString(record.created, into: &buffer)
        buffer.append(contentsOf: #","updated":"#.utf8)
        JSONWriter.writeString(record.updated, into: &buffer)
        if fieldsJSON.count > 2 {  // not `{}`
            buffer.append(UInt8(ascii: ","))
            buffer.append(contentsOf: fieldsJSON[1...])
        } else {
            buffer.append(UInt8(ascii: "}"))
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    static func status(_ raw: String) throws -> DeliveryStatus {
        guard let status = DeliveryStatus(rawValue: raw) else {
            throw CorruptOutbox(problem: "unknown delivery status '\(raw)'")
        }
        return status
    }

    /// Columns of `OutboxSQL.deliveryColumns`.
    static let deliveryColumnCount = 13

    /// Reads the columns of `OutboxSQL.deliveryColumns`.
    static func decodeDelivery(_ row: Row) throws -> Delivery {
        Delivery(
            id: try row.decode(atIndex: 0), eventSequence: try row.decode(atIndex: 1),
            eventID: try row.decode(atIndex: 2), handler: try row.decode(atIndex: 3),
            collection: try row.decode(atIndex: 4), recordID: try row.decode(atIndex: 5),
            status: try status(try row.decode(atIndex: 6)), attempts: try row.decode(atIndex: 7),
            maxAttempts: try row.decode(atIndex: 8), nextAttemptAt: try row.decode(atIndex: 9),
            lastError: try row.decode(atIndex: 10), created: try row.decode(atIndex: 11),
            updated: try row.decode(atIndex: 12))
    }

    /// Reads the columns of `OutboxSQL.eventColumns`, starting at column `start`.
    static func decodeEvent(_ row: Row, from start: Int) throws -> OutboxEvent {
        let sequence: Int64 = try row.decode(atIndex: start)
        return OutboxEvent(
            sequence: sequence, id: try row.decode(atIndex: start + 1), type: try row.decode(atIndex: start + 2),
            collection: try row.decode(atIndex: start + 3), recordID: try row.decode(atIndex: start + 4),
            data: try object(row, at: start + 5, sequence: sequence) ?? JSONObject(),
            oldData: try object(row, at: start + 6, sequence: sequence),
            timestamp: try row.decode(atIndex: start + 7))
    }

    /// Parses a JSON object column straight from SQLite's buffer; nil for NULL.
    private static func object(_ row: Row, at index: Int, sequence: Int64) throws -> JSONObject? {
        try row.withUnsafeData(atIndex: index) { data -> JSONObject? in
            guard let data else { return nil }
            let value: JSONValue
            do {
                value = try data.withUnsafeBytes { bytes in try JSONValue.parse(bytes) }
            } catch {
                throw CorruptOutbox(problem: "data of event \(sequence) is unreadable: \(error)")
            }
            guard case .object(let object) = value else {
                throw CorruptOutbox(problem: "data of event \(sequence) is not a JSON object")
            }
            return object
        }
    }

    static func fetchDelivery(_ db: Database, id: Int64) throws -> Delivery? {
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.delivery), arguments: [id])
        return try cursor.next().map(decodeDelivery)
    }
}

/// Stored outbox rows cannot be read back (edited by hand or damaged). Not a `StoreError`, so
/// that inside a write batch it rolls the transaction back; reads report it as `database`.
struct CorruptOutbox: Error, CustomStringConvertible {
    let problem: String
    var description: String { "outbox data is unreadable: \(problem)" }
}

/// SQL of the outbox, as constants for GRDB's statement cache.
enum OutboxSQL {
    static let insertEvent = """
        INSERT INTO hook_events (id, type, collection, record_id, data, old_data, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)
        """
    static let deleteEvent = "DELETE FROM hook_events WHERE sequence = ?"
    static let insertDelivery = """
        INSERT INTO hook_deliveries (event_sequence, handler, collection, record_id, status, attempts, max_attempts, created, updated)
        VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
        """
    /// One row per element of a JSON array of [handler, max attempts], in array order.
    static let insertDeliveries = """
        INSERT INTO hook_deliveries (event_sequence, handler, collection, record_id, status, attempts, max_attempts, created, updated)
        SELECT ?1, value ->> 0, ?2, ?3, 'pending', 0, value ->> 1, ?4, ?5 FROM json_each(?6) ORDER BY key
        """

    /// Columns read by `Outbox.decodeDelivery`, from `hook_deliveries d JOIN hook_events e`.
    static let deliveryColumns = """
        d.id, d.event_sequence, e.id, d.handler, d.collection, d.record_id, d.status, d.attempts, \
        d.max_attempts, d.next_attempt_at, d.last_error, d.created, d.updated
        """
    /// Columns read by `Outbox.decodeEvent`.
    static let eventColumns = "e.sequence, e.id, e.type, e.collection, e.record_id, e.data, e.old_data, e.timestamp"
    static let deliveriesJoin = " FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence"

    static let delivery = "SELECT " + deliveryColumns + deliveriesJoin + " WHERE d.id = ?"
    static let event = "SELECT " + eventColumns + " FROM hook_events e WHERE e.sequence = ?"
    static let unfinished = "SELECT " + deliveryColumns + ", " + eventColumns + deliveriesJoin
        + " WHERE d.status IN ('pending', 'running', 'failed') ORDER BY d.event_sequence, d.id"

    /// The listing's SQL for the filters that are set (arguments in this order, then the limit).
    static func listDeliveries(status: Bool, handler: Bool, collection: Bool) -> String {
        var conditions: [String] = []
        if status { conditions.append("d.status = ?") }
        if handler { conditions.append("d.handler = ?") }
        if collection { conditions.append("d.collection = ?") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "SELECT " + deliveryColumns + deliveriesJoin + filter + " ORDER BY d.id DESC LIMIT ?"
    }

    static let deliveryExists = "SELECT 1 FROM hook_deliveries WHERE id = ?"
    static let deliveryStatus = "SELECT status FROM hook_deliveries WHERE id = ?"
    static let insertAttempt = """
        INSERT INTO hook_attempts (delivery_id, attempt, succeeded, started, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)
        """
    static let updateAfterSuccess = """
        UPDATE hook_deliveries SET status = ?, attempts = ?, next_attempt_at = NULL, last_error = NULL, last_started = ?,
            last_duration_ms = ?, updated = ? WHERE id = ?
        """
    /// Successes as a JSON array of [id, attempt, started, duration ms, status].
    static let updateAfterSuccesses = """
        UPDATE hook_deliveries
        SET status = u.status, attempts = u.attempt, next_attempt_at = NULL, last_error = NULL, last_started = u.started,
            last_duration_ms = u.duration, updated = ?1
        FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 2 AS started, value ->> 3 AS duration,
                     value ->> 4 AS status FROM json_each(?2)) AS u
        WHERE hook_deliveries.id = u.id
        """
    static let updateAfterFailure = """
        UPDATE hook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated = ? WHERE id = ?
        """
    static let lastSuccess = """
        SELECT d.attempts, d.last_started, d.last_duration_ms, e.id, d.handler
        FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence
        WHERE d.id = ? AND d.status = 'succeeded' AND d.last_started IS NOT NULL
        """
    static let attempts = """
        SELECT a.delivery_id, e.id, d.handler, a.attempt, a.succeeded, a.started, a.duration_ms, a.error
        FROM hook_attempts a
        JOIN hook_deliveries d ON d.id = a.delivery_id
        JOIN hook_events e ON e.sequence = d.event_sequence
        WHERE a.delivery_id = ? ORDER BY a.attempt, a.id
        """
    static let markRunning = """
        UPDATE hook_deliveries SET status = 'running', updated = ? WHERE id = ? AND status IN ('pending', 'failed')
        """
    static let requeue = """
        UPDATE hook_deliveries
        SET status = 'pending', next_attempt_at = NULL, max_attempts = max(max_attempts, attempts + 1), updated = ?
        WHERE id = ?
        """
    static let resetRunning = "UPDATE hook_deliveries SET status = 'pending', updated = ? WHERE status = 'running'"
    static let purgeDeliveries = """
        DELETE FROM hook_deliveries WHERE id IN (
            SELECT id FROM hook_deliveries WHERE status = 'succeeded' AND updated < ? ORDER BY id LIMIT ?
        ) RETURNING event_sequence, id
        """
    static let deleteAttempts = "DELETE FROM hook_attempts WHERE delivery_id = ?"
    static let deleteOrphanEvent = """
        DELETE FROM hook_events WHERE sequence = ? AND NOT EXISTS (SELECT 1 FROM hook_deliveries WHERE event_sequence = ?)
        """
}
