import GRDB
import MoonbaseJSON
import MoonbaseModel

/// The outbox's tables, and the one place that knows how they are laid out: storing an event with
/// its deliveries, recording attempts, requeues, purges, and every read of them.
///
/// An event's row also holds its deliveries while they simply go well (see `Schema`): a write
/// costs one row and one index entry, and the first attempts that succeed one UPDATE of that row,
/// whatever the number of handlers. A delivery gets a `hook_deliveries` row of its own only when
/// an attempt at it fails (or past the 64th target). Readers get the same `Delivery` either way.
///
/// Writes are `WriteBatcher` operations, prepared outside the transaction where they can be;
/// reads take any transaction.
struct OutboxTables: Sendable {
    // MARK: - Storing an event

    /// Stores the event, its deliveries pending in its row, and returns its sequence. Event ids
    /// are the caller's (unique by construction); the store does not pay an index to check them.
    /// The event's `data` is not stored: the record written next names the event (a create or
    /// update), or it is `oldDataText` (a delete); see `Schema`.
    func insert(_ event: PendingEvent, oldDataText: String?, _ db: Database) throws -> Int64 {
        let inRow = min(event.targets.count, Self.eventRowTargets)
        let pending = inRow == Self.eventRowTargets ? -1 : Self.bit(inRow) &- 1  // all 64 bits: -1
        try db.cachedStatement(sql: OutboxSQL.insertEvent).run { bind in
            bind.text(event.id)
            bind.text(event.type)
            bind.text(event.collection)
            bind.text(event.recordID)
            bind.text(event.handlers)
            bind.int(pending)
            bind.text(event.now)
            bind.text(event.timestamp)
            bind.int(Int64(event.depth))
            bind.text(oldDataText)
        }
        return db.lastInsertedRowID
    }

    /// Takes back an event stored by `insert` when the record write it was for is refused.
    /// (Its sequence number stays used: sequences may have gaps.)
    func withdraw(sequence: Int64, _ db: Database) throws {
        try db.cachedStatement(sql: OutboxSQL.deleteEvent).execute(arguments: [sequence])
    }

    /// Once the record write is done: rows for the deliveries past the event row's 64 (rarely
    /// any), and what the write returns.
    func finish(_ event: PendingEvent, sequence: Int64, record: MoonbaseModel.Record, data: JSONObject, oldData: JSONObject?,
                _ db: Database) throws -> WriteResult {
        if event.targets.count > Self.eventRowTargets {
            try db.cachedStatement(sql: OutboxSQL.insertDeliveriesPastEventRow).execute(arguments: [
                sequence, event.collection, event.recordID, event.now, event.handlers, Self.eventRowTargets,
            ])
        }
        let deliveries = NewDeliveries(eventSequence: sequence, eventID: event.id, collection: event.collection, recordID: event.recordID,
                                       targets: event.targets, created: event.now)
        let stored = OutboxEvent(sequence: sequence, id: event.id, type: event.type, collection: event.collection, recordID: event.recordID,
                                 data: data, oldData: oldData, timestamp: event.timestamp, depth: event.depth)
        return WriteResult(record: record, event: stored, deliveries: deliveries)
    }

    // MARK: - Recording attempts, requeues and purges

    /// Records finished attempts (see `SQLiteStore.recordAttempts`). First attempts that succeeded
    /// are one UPDATE per event (their event's row keeps them); a failed one moves its delivery to
    /// a row of its own.
    func recordAttempts(_ outcomes: [AttemptOutcome]) -> WriteBatcher.Operation<Void> {
        let now = Timestamp.now()
        // The common case: first attempts that succeeded, usually all the deliveries of one event
        // (they run as one job). Each event's are one UPDATE: bits cleared, timings merged in.
        // The timings are written as JSON text straight away: `{"n":[started, ms],…}`. A target
        // appears once per event here (one attempt each), so the keys are unique.
        var successes: [(sequence: Int64, mask: Int64, timings: [UInt8])] = []
        var others: [AttemptOutcome] = []
        for outcome in outcomes {
            guard outcome.error == nil, let (sequence, position) = Self.inEventRow(outcome) else {
                others.append(outcome)
                continue
            }
            if successes.last?.sequence != sequence { successes.append((sequence, 0, [])) }
            let last = successes.count - 1
            successes[last].timings.append(successes[last].mask == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            successes[last].mask |= Self.bit(position)
            Self.writeTiming(of: outcome, at: position, into: &successes[last].timings)
        }
        let marks = successes.map { ($0.sequence, $0.mask, String(decoding: $0.timings, as: UTF8.self) + "}") }
        let rest = others
        return { db in
            let mark = try db.cachedStatement(sql: OutboxSQL.markSucceeded)
            for (sequence, mask, timings) in marks {
                try mark.run { bind in
                    bind.int(mask)
                    bind.text(timings)
                    bind.text(now)
                    bind.int(sequence)
                }
            }
            for outcome in rest { try Self.recordOnRow(outcome, db, now: now) }
        }
    }

    /// Records an attempt at a delivery that has a row of its own, or a failed first attempt,
    /// which moves the delivery from its event's row to one of its own.
    private static func recordOnRow(_ outcome: AttemptOutcome, _ db: Database, now: String) throws {
        let id = outcome.deliveryID
        if outcome.error == nil {
            try db.cachedStatement(sql: OutboxSQL.updateAfterSuccess).execute(arguments: [
                outcome.status.rawValue, outcome.attempt, outcome.started, outcome.durationMilliseconds, now, id,
            ])
            return
        }
        if let target = Self.inEventRow(outcome) {
            try db.cachedStatement(sql: OutboxSQL.detach).execute(arguments: [
                id, target.position, outcome.status.rawValue, outcome.attempt, outcome.nextAttemptAt, outcome.error, now, target.sequence,
            ])
            guard db.changesCount == 1 else { return } // unknown
            try db.cachedStatement(sql: OutboxSQL.markDetached).execute(arguments: [Self.bit(target.position), target.sequence])
        } else {
            try db.cachedStatement(sql: OutboxSQL.updateAfterFailure).execute(arguments: [
                outcome.status.rawValue, outcome.attempt, outcome.nextAttemptAt, outcome.error, now, id,
            ])
            guard db.changesCount == 1 else { return } // unknown
        }
        try db.cachedStatement(sql: OutboxSQL.insertAttempt).execute(arguments: [
            id, outcome.attempt, false, outcome.started, outcome.durationMilliseconds, outcome.error,
        ])
    }

    /// Puts a failed or dead delivery back to pending (see `SQLiteStore.requeue`).
    func requeue(_ id: Int64, force: Bool) -> WriteBatcher.Operation<Delivery> {
        let now = Timestamp.now()
        return { db in
            guard let delivery = try Self.fetchDelivery(db, id: id) else { throw StoreError.deliveryNotFound(id) }
            // Failed and dead deliveries always have a row of their own.
            guard delivery.status == .failed || delivery.status == .dead else {
                throw StoreError.deliveryNotRetryable(id: id, status: delivery.status)
            }
            let newer = try Self.newerSuccess(db, than: delivery)
            if let newer, !force { throw StoreError.staleRedelivery(id: id, newer: newer) }
            try db.cachedStatement(sql: OutboxSQL.requeue).execute(arguments: [now, newer != nil, id])
            guard let requeued = try Self.fetchDelivery(db, id: id) else {
                throw CorruptOutbox(problem: "delivery \(id) vanished while requeued")
            }
            return requeued
        }
    }

    /// Deletes old events whose deliveries all succeeded (see `SQLiteStore.purgeSucceeded`).
    func purge(before cutoff: String, batchSize: Int) -> WriteBatcher.Operation<Int> {
        return { db in
            let purged = try Int64.fetchAll(db.cachedStatement(sql: OutboxSQL.purgeEvents), arguments: [cutoff, batchSize])
            let attempts = try db.cachedStatement(sql: OutboxSQL.deleteAttempts)
            let deliveries = try db.cachedStatement(sql: OutboxSQL.deleteDeliveries)
            for sequence in purged {
                let range: StatementArguments = [Outbox.deliveryID(sequence: sequence, position: 0),
                                                 Outbox.deliveryID(sequence: sequence, position: Outbox.maxTargets - 1)]
                try attempts.execute(arguments: range) // failed attempts of deliveries that succeeded later
                try deliveries.execute(arguments: range)
            }
            return purged.count
        }
    }

    // MARK: - Reading

    /// `unfinishedDeliveries()` of the events from sequence `from` on, about `events` events at
    /// most, so a long backlog can be read a part at a time. `next` is the sequence to go on
    /// from, or nil when everything unfinished from `from` on was read.
    func unfinished(from: Int64, events limit: Int, _ db: Database) throws -> UnfinishedDeliveries {
        let limit = max(limit, 1)
        // An event's own rows are at most `maxTargets`: a limit above that always ends past the first event.
        let rowLimit = limit == .max ? limit : max(limit, Outbox.maxTargets + 1)
        var result: [(delivery: Delivery, event: OutboxEvent)] = []
        // Each event's JSON is parsed once.
        var events: [Int64: OutboxEvent] = [:]
        // Past `bound` a limited read may have missed something: what follows is read next time.
        var bound = Int64.max
        let inEvents = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.unfinishedInEvents), arguments: [from, limit])
        var count = 0
        while let row = try inEvents.next() {
            let event = try Self.decodeEvent(row, from: Self.eventDeliveryColumnCount)
            events[event.sequence] = event
            count += 1
            if count == limit { bound = event.sequence }
            for delivery in try Self.eventDeliveries(row) where delivery.status == .pending {
                result.append((delivery, event))
            }
        }
        let inRows = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.unfinishedInRows), arguments: [from, rowLimit])
        count = 0
        while let row = try inRows.next() {
            let delivery = try Self.decodeDelivery(row)
            let event = try events[delivery.eventSequence] ?? Self.decodeEvent(row, from: Self.deliveryColumnCount)
            events[event.sequence] = event
            count += 1
            if count == rowLimit { bound = min(bound, delivery.eventSequence - 1) } // its event's later rows are missing
            result.append((delivery, event))
        }
        if bound < .max { result.removeAll { $0.delivery.eventSequence > bound } }
        result.sort { $0.delivery.id < $1.delivery.id }
        return (result, bound == .max ? nil : bound + 1)
    }

    /// Deliveries matching `filter`, newest first (id descending), at most `filter.limit`
    /// (clamped to 1...1000).
    func deliveries(_ filter: DeliveryFilter, _ db: Database) throws -> [Delivery] {
        var arguments: StatementArguments = []
        if let status = filter.status { arguments += [status.rawValue] }
        if let handler = filter.handler { arguments += [handler] }
        if let collection = filter.collection { arguments += [collection] }
        let rowsSQL = OutboxSQL.listDeliveries(status: filter.status != nil, handler: filter.handler != nil,
                                               collection: filter.collection != nil)
        // An event's row holds only pending and succeeded deliveries.
        let inEvents = filter.status == nil || filter.status == .pending || filter.status == .succeeded
        let eventsSQL = OutboxSQL.listEvents(pendingOnly: filter.status == .pending, collection: filter.collection != nil)
        let eventArguments: StatementArguments = filter.collection.map { [$0] } ?? []
        let limit = min(max(filter.limit, 1), 1000)
        // Two streams, both newest first, merged by id.
        let rows = try Row.fetchCursor(db.cachedStatement(sql: rowsSQL), arguments: arguments)
        let events = try inEvents ? Row.fetchCursor(db.cachedStatement(sql: eventsSQL), arguments: eventArguments) : nil
        var nextRow = try rows.next().map(Self.decodeDelivery)
        var fromEvent: [Delivery] = []  // the current event's, by target: the newest is last
        var result: [Delivery] = []
        while result.count < limit {
            while fromEvent.isEmpty, let row = try events?.next() {
                fromEvent = try Self.eventDeliveries(row).filter {
                    (filter.status == nil || $0.status == filter.status) && (filter.handler == nil || $0.handler == filter.handler)
                }
            }
            if let row = nextRow, row.id > fromEvent.last?.id ?? .min {
                result.append(row)
                nextRow = try rows.next().map(Self.decodeDelivery)
            } else if let delivery = fromEvent.popLast() {
                result.append(delivery)
            } else {
                break
            }
        }
        return result
    }

    /// One delivery; nil if there is none.
    func delivery(id: Int64, _ db: Database) throws -> Delivery? {
        try Self.fetchDelivery(db, id: id)
    }

    /// Every recorded attempt of a delivery, by attempt number: the failed ones, then the one that
    /// succeeded. nil if there is no such delivery.
    func attempts(deliveryID: Int64, _ db: Database) throws -> [DeliveryAttempt]? {
        guard let delivery = try Self.fetchDelivery(db, id: deliveryID) else { return nil }
        func attempt(_ number: Int, succeeded: Bool, started: String, duration: Double, error: String?) -> DeliveryAttempt {
            DeliveryAttempt(deliveryID: deliveryID, eventID: delivery.eventID, handler: delivery.handler, attempt: number,
                            succeeded: succeeded, started: started, durationMilliseconds: duration, error: error)
        }
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.attempts), arguments: [deliveryID])
        var result: [DeliveryAttempt] = []
        while let row = try cursor.next() {
            result.append(attempt(try row.decode(atIndex: 0), succeeded: try row.decode(atIndex: 1), started: try row.decode(atIndex: 2),
                                  duration: try row.decode(atIndex: 3), error: try row.decode(atIndex: 4)))
        }
        if delivery.status == .succeeded, let success = try Self.success(db, delivery) {
            result.append(attempt(delivery.attempts, succeeded: true, started: success.started, duration: success.duration, error: nil))
        }
        return result
    }

    /// One stored event; nil if there is none (purged, or never stored).
    func event(sequence: Int64, _ db: Database) throws -> OutboxEvent? {
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.event), arguments: [sequence])
        return try cursor.next().map { try Self.decodeEvent($0, from: 0) }
    }

    /// Rows in the outbox tables (for tests and diagnostics).
    func rowCounts(_ db: Database) throws -> (events: Int, deliveries: Int, attempts: Int) {
        let row = try Row.fetchOne(db, sql: """
            SELECT (SELECT count(*) FROM hook_events), (SELECT count(*) FROM hook_deliveries),
                   (SELECT count(*) FROM hook_attempts)
            """)!
        return (try row.decode(atIndex: 0), try row.decode(atIndex: 1), try row.decode(atIndex: 2))
    }
}

// MARK: - Rows

extension OutboxTables {
    /// Deliveries an event's row can hold (a bit each in `pending` and `detached`); those past it
    /// have a row of their own from the start.
    static let eventRowTargets = 64

    static func bit(_ position: Int) -> Int64 {
        Int64(1) << position
    }

    /// `"position":[started, ms]`, a member of an event's `succeeded`.
    static func writeTiming(of outcome: AttemptOutcome, at position: Int, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        JSONWriter.writeInt(Int64(position), into: &buffer)
        buffer.append(contentsOf: #"":["#.utf8)
        JSONWriter.writeString(outcome.started, into: &buffer)
        buffer.append(UInt8(ascii: ","))
        writeMilliseconds(outcome.durationMilliseconds, into: &buffer)
        buffer.append(UInt8(ascii: "]"))
    }

    /// A duration in milliseconds to the microsecond, as a JSON number (`12.345`): integer
    /// formatting, where `Double.description` (shortest round trip) cost more than the rest of a
    /// timing. Not finite or negative: 0.
    static func writeMilliseconds(_ milliseconds: Double, into buffer: inout [UInt8]) {
        let microseconds = milliseconds.isFinite && milliseconds > 0 ? Int64(min(milliseconds * 1000, 9e15).rounded()) : 0
        JSONWriter.writeInt(microseconds / 1000, into: &buffer)
        let fraction = Int(microseconds % 1000) // as three digits
        buffer.append(UInt8(ascii: "."))
        buffer.append(UInt8(48 + fraction / 100))
        buffer.append(UInt8(48 + fraction / 10 % 10))
        buffer.append(UInt8(48 + fraction % 10))
    }

    /// The event and target of the delivery `outcome` is for, if it still lives in its event's
    /// row: a failed attempt moves a delivery out, so those are exactly the first attempts (of the
    /// first 64 targets).
    static func inEventRow(_ outcome: AttemptOutcome) -> (sequence: Int64, position: Int)? {
        guard outcome.attempt == 1, outcome.deliveryID >= 0 else { return nil }
        let position = Int(outcome.deliveryID % Int64(Outbox.maxTargets))
        guard position < eventRowTargets else { return nil }
        return (outcome.deliveryID / Int64(Outbox.maxTargets), position)
    }

    static func status(_ raw: String) throws -> DeliveryStatus {
        guard let status = DeliveryStatus(rawValue: raw) else {
            throw CorruptOutbox(problem: "unknown delivery status '\(raw)'")
        }
        return status
    }

    /// Columns of `OutboxSQL.deliveryColumns`.
    static let deliveryColumnCount = 14

    /// Reads the columns of `OutboxSQL.deliveryColumns`.
    static func decodeDelivery(_ row: Row) throws -> Delivery {
        Delivery(
            id: try row.decode(atIndex: 0), eventSequence: try row.decode(atIndex: 1),
            eventID: try row.decode(atIndex: 2), handler: try row.decode(atIndex: 3),
            collection: try row.decode(atIndex: 4), recordID: try row.decode(atIndex: 5),
            status: try status(try row.decode(atIndex: 6)), attempts: try row.decode(atIndex: 7),
            maxAttempts: try row.decode(atIndex: 8), nextAttemptAt: try row.decode(atIndex: 9),
            lastError: try row.decode(atIndex: 10), created: try row.decode(atIndex: 11),
            updated: try row.decode(atIndex: 12), redelivered: try row.decode(atIndex: 13))
    }

    /// Columns of `OutboxSQL.eventDeliveryColumns`.
    static let eventDeliveryColumnCount = 9

    /// The deliveries an event's row holds (pending or succeeded, by target), from the columns of
    /// `OutboxSQL.eventDeliveryColumns`. A succeeded one succeeded at its first attempt.
    static func eventDeliveries(_ row: Row) throws -> [Delivery] {
        let sequence: Int64 = try row.decode(atIndex: 0)
        let (eventID, collection, recordID): (String, String, String) =
            (try row.decode(atIndex: 1), try row.decode(atIndex: 2), try row.decode(atIndex: 3))
        let pending: Int64 = try row.decode(atIndex: 5)
        let detached: Int64 = try row.decode(atIndex: 6)
        let created: String = try row.decode(atIndex: 7)
        let finished: String? = try row.decode(atIndex: 8)
        guard case .array(let targets)? = try json(row, at: 4, sequence: sequence) else {
            throw CorruptOutbox(problem: "handlers of event \(sequence) are not a JSON array")
        }
        var result: [Delivery] = []
        for (position, target) in targets.prefix(eventRowTargets).enumerated() where detached & bit(position) == 0 {
            guard case .array(let pair) = target, pair.count == 2, case .string(let handler) = pair[0],
                  case .int(let maxAttempts) = pair[1] else {
                throw CorruptOutbox(problem: "handler \(position) of event \(sequence) is not [key, max attempts]")
            }
            let isPending = pending & bit(position) != 0
            result.append(Delivery(
                id: Outbox.deliveryID(sequence: sequence, position: position), eventSequence: sequence, eventID: eventID,
                handler: handler, collection: collection, recordID: recordID, status: isPending ? .pending : .succeeded,
                attempts: isPending ? 0 : 1, maxAttempts: Int(maxAttempts), nextAttemptAt: nil, lastError: nil,
                created: created, updated: isPending ? created : finished ?? created))
        }
        return result
    }

    /// Reads the columns of `OutboxSQL.eventColumns`, starting at column `start`.
    static func decodeEvent(_ row: Row, from start: Int) throws -> OutboxEvent {
        let sequence: Int64 = try row.decode(atIndex: start)
        guard let data = try object(row, at: start + 5, sequence: sequence) else {
            throw CorruptOutbox(problem: "data of event \(sequence) is missing")
        }
        return OutboxEvent(
            sequence: sequence, id: try row.decode(atIndex: start + 1), type: try row.decode(atIndex: start + 2),
            collection: try row.decode(atIndex: start + 3), recordID: try row.decode(atIndex: start + 4), data: data,
            oldData: try object(row, at: start + 6, sequence: sequence),
            timestamp: try row.decode(atIndex: start + 7), depth: try row.decode(atIndex: start + 8))
    }

    /// Parses a JSON object column; nil for NULL.
    private static func object(_ row: Row, at index: Int, sequence: Int64) throws -> JSONObject? {
        guard let value = try json(row, at: index, sequence: sequence) else { return nil }
        guard case .object(let object) = value else {
            throw CorruptOutbox(problem: "data of event \(sequence) is not a JSON object")
        }
        return object
    }

    /// Parses a JSON column straight from SQLite's buffer; nil for NULL.
    private static func json(_ row: Row, at index: Int, sequence: Int64) throws -> JSONValue? {
        try row.withUnsafeData(atIndex: index) { data -> JSONValue? in
            guard let data else { return nil }
            do {
                return try data.withUnsafeBytes { bytes in try JSONValue.parse(bytes) }
            } catch {
                throw CorruptOutbox(problem: "data of event \(sequence) is unreadable: \(error)")
            }
        }
    }

    /// The newest delivery to `delivery`'s handler of a later event of its record that succeeded,
    /// in a row of its own or in its event's row. A manual operation: it walks the events after
    /// `delivery`'s, newest first, rather than have every write pay for an index.
    static func newerSuccess(_ db: Database, than delivery: Delivery) throws -> Int64? {
        let arguments: StatementArguments = [delivery.eventSequence, delivery.collection, delivery.recordID, delivery.handler]
        let inRows = try Int64.fetchOne(db.cachedStatement(sql: OutboxSQL.newerSuccessInRows), arguments: arguments)
        let events = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.newerEventsOfRecord), arguments: [
            delivery.eventSequence, delivery.collection, delivery.recordID, inRows.map { $0 / Int64(Outbox.maxTargets) } ?? delivery.eventSequence,
        ])
        while let row = try events.next() {
            if let found = try eventDeliveries(row).last(where: { $0.handler == delivery.handler && $0.status == .succeeded }) {
                return found.id // newer than any in a row of its own: its event is
            }
        }
        return inRows
    }

    /// A delivery with a row of its own, else one its event's row holds.
    static func fetchDelivery(_ db: Database, id: Int64) throws -> Delivery? {
        if let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.delivery), arguments: [id]) {
            return try decodeDelivery(row)
        }
        guard id >= 0, let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.eventDeliveries),
                                                  arguments: [id / Int64(Outbox.maxTargets)]) else { return nil }
        return try eventDeliveries(row).first { $0.id == id }
    }

    /// When the successful attempt at a succeeded delivery started, and how long it took.
    static func success(_ db: Database, _ delivery: Delivery) throws -> (started: String, duration: Double)? {
        let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.lastSuccess), arguments: [delivery.id])
            ?? Row.fetchOne(db.cachedStatement(sql: OutboxSQL.successInEventRow),
                            arguments: [delivery.eventSequence, "$.\"\(delivery.id % Int64(Outbox.maxTargets))\""])
        guard let row, let started: String = try row.decode(atIndex: 0), let duration: Double = try row.decode(atIndex: 1)
        else { return nil }
        return (started, duration)
    }
}

/// An event a write was asked to record, prepared before the write is queued.
struct PendingEvent: Sendable {
    let id: String
    let type: String
    let collection: String
    let recordID: String
    let timestamp: String
    let depth: Int
    /// `maxAttempts` below 1 raised to 1.
    let targets: [DeliveryTarget]
    /// The targets as stored: `[[handler key, max attempts], …]`.
    let handlers: String
    /// The deliveries' `created` and `updated`.
    let now: String

    /// nil when there is nothing to record (no request, or no targets).
    /// - Throws: `database` for more than `Outbox.maxTargets` targets.
    init?(_ request: OutboxRequest?, type: String, collection: String, recordID: String,
          timestamp: @autoclosure () -> String) throws(StoreError) {
        guard let request, !request.targets.isEmpty else { return nil }
        guard request.targets.count <= Outbox.maxTargets else {
            throw .database("an event can have at most \(Outbox.maxTargets) deliveries, not \(request.targets.count)")
        }
        self.id = request.eventID
        self.type = type
        self.collection = collection
        self.recordID = recordID
        self.timestamp = timestamp()
        self.depth = request.depth
        self.targets = request.targets
        self.handlers = request.deliveryTargets.stored
        self.now = Timestamp.now()
    }

    static let created = "record.created"
    static let updated = "record.updated"
    static let deleted = "record.deleted"
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
        INSERT INTO hook_events (id, type, collection, record_id, handlers, pending, created, timestamp, depth, old_data)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let deleteEvent = "DELETE FROM hook_events WHERE sequence = ?"
    /// Rows for the elements of a JSON array of [handler, max attempts] from index ?6 on.
    static let insertDeliveriesPastEventRow = """
        INSERT INTO hook_deliveries (id, event_sequence, handler, collection, record_id, status, attempts, max_attempts, created, updated)
        SELECT ?1 * \(Outbox.maxTargets) + key, ?1, value ->> 0, ?2, ?3, 'pending', 0, value ->> 1, ?4, ?4
        FROM json_each(?5) WHERE key >= ?6
        """

    /// Columns read by `OutboxTables.decodeDelivery`, from `hook_deliveries d JOIN hook_events e`.
    static let deliveryColumns = """
        d.id, d.event_sequence, e.id, d.handler, d.collection, d.record_id, d.status, d.attempts, \
        d.max_attempts, d.next_attempt_at, d.last_error, d.created, d.updated, d.redelivered
        """
    /// Columns read by `OutboxTables.eventDeliveries`, from `hook_events e`.
    static let eventDeliveryColumns = "e.sequence, e.id, e.collection, e.record_id, e.handlers, e.pending, e.detached, e.created, e.finished"
    /// Columns read by `OutboxTables.decodeEvent`. An event's data is its own copy, else the record row
    /// that names it (a create or update whose record has not changed since), else (a delete)
    /// its `old_data`.
    static let eventColumns = """
        e.sequence, e.id, e.type, e.collection, e.record_id, coalesce(e.data, CASE WHEN e.type = 'record.deleted' THEN e.old_data \
        ELSE (SELECT \(Schema.recordJSON("r")) FROM records r WHERE r.collection = e.collection AND r.id = e.record_id \
        AND r.event = e.sequence) END), e.old_data, e.timestamp, e.depth
        """
    static let deliveriesJoin = " FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence"

    static let delivery = "SELECT " + deliveryColumns + deliveriesJoin + " WHERE d.id = ?"
    static let eventDeliveries = "SELECT " + eventDeliveryColumns + " FROM hook_events e WHERE e.sequence = ?"
    static let event = "SELECT " + eventColumns + " FROM hook_events e WHERE e.sequence = ?"
    /// ?1 the first sequence, ?2 at most this many events.
    static let unfinishedInEvents = "SELECT " + eventDeliveryColumns + ", " + eventColumns
        + " FROM hook_events e WHERE e.pending <> 0 AND e.sequence >= ?1 ORDER BY e.sequence LIMIT ?2"
    /// ?1 the first event sequence, ?2 at most this many rows.
    static let unfinishedInRows = "SELECT " + deliveryColumns + ", " + eventColumns + deliveriesJoin
        + " WHERE d.status IN ('pending', 'failed') AND d.event_sequence >= ?1 ORDER BY d.id LIMIT ?2"

    /// The listing's SQL for the deliveries with a row, for the filters that are set (arguments in
    /// this order).
    static func listDeliveries(status: Bool, handler: Bool, collection: Bool) -> String {
        var conditions: [String] = []
        if status { conditions.append("d.status = ?") }
        if handler { conditions.append("d.handler = ?") }
        if collection { conditions.append("d.collection = ?") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "SELECT " + deliveryColumns + deliveriesJoin + filter + " ORDER BY d.id DESC"
    }

    /// The listing's SQL for the events whose rows hold deliveries, newest first.
    static func listEvents(pendingOnly: Bool, collection: Bool) -> String {
        var conditions: [String] = []
        if pendingOnly { conditions.append("e.pending <> 0") }
        if collection { conditions.append("e.collection = ?") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "SELECT " + eventDeliveryColumns + " FROM hook_events e" + filter + " ORDER BY e.sequence DESC"
    }

    /// First attempts that succeeded, of one event: ?1 their bits, ?2 their timings (JSON object).
    static let markSucceeded = """
        UPDATE hook_events
        SET pending = pending & ~?1, succeeded = CASE WHEN succeeded IS NULL THEN ?2 ELSE json_patch(succeeded, ?2) END, finished = ?3
        WHERE sequence = ?4 AND pending & ?1 <> 0
        """
    /// A failed first attempt: target ?2 of event ?8 moves to row ?1, if it is still pending in the event's row.
    static let detach = """
        INSERT INTO hook_deliveries (id, event_sequence, handler, collection, record_id, status, attempts, max_attempts,
                                     next_attempt_at, last_error, created, updated)
        SELECT ?1, sequence, handlers -> ?2 ->> 0, collection, record_id, ?3, ?4, handlers -> ?2 ->> 1, ?5, ?6, created, ?7
        FROM hook_events WHERE sequence = ?8 AND (pending >> ?2) & 1
        """
    static let markDetached = "UPDATE hook_events SET pending = pending & ~?1, detached = detached | ?1 WHERE sequence = ?2"
    static let insertAttempt = """
        INSERT INTO hook_attempts (delivery_id, attempt, succeeded, started, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)
        """
    static let updateAfterSuccess = """
        UPDATE hook_deliveries SET status = ?, attempts = ?, next_attempt_at = NULL, last_error = NULL, last_started = ?,
            last_duration_ms = ?, updated = ? WHERE id = ?
        """
    static let updateAfterFailure = """
        UPDATE hook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated = ? WHERE id = ?
        """
    static let lastSuccess = "SELECT last_started, last_duration_ms FROM hook_deliveries WHERE id = ?"
    /// ?2: the JSON path of the target in `succeeded`.
    static let successInEventRow = "SELECT succeeded -> ?2 ->> 0, succeeded -> ?2 ->> 1 FROM hook_events WHERE sequence = ?1"
    static let attempts = """
        SELECT attempt, succeeded, started, duration_ms, error FROM hook_attempts WHERE delivery_id = ? ORDER BY attempt, id
        """
    static let requeue = """
        UPDATE hook_deliveries
        SET status = 'pending', next_attempt_at = NULL, max_attempts = max(max_attempts, attempts + 1), updated = ?,
            redelivered = ?
        WHERE id = ?
        """
    /// The newest succeeded delivery with a row of its own after event ?1, of record (?2, ?3), to handler ?4.
    static let newerSuccessInRows = """
        SELECT max(id) FROM hook_deliveries
        WHERE id >= (?1 + 1) * \(Outbox.maxTargets) AND collection = ?2 AND record_id = ?3 AND handler = ?4 AND status = 'succeeded'
        """
    /// Events of record (?2, ?3) after event ?1 and after ?4 (no newer success in a row of its own
    /// can be older than that), newest first, as `OutboxTables.eventDeliveries` reads them.
    static let newerEventsOfRecord = """
        SELECT \(eventDeliveryColumns) FROM hook_events e
        WHERE e.sequence > max(?1, ?4) AND e.collection = ?2 AND e.record_id = ?3
        ORDER BY e.sequence DESC
        """
    /// ?1 the cutoff, ?2 the batch size. An event goes once nothing is pending in its row and every
    /// row of its own succeeded, all before the cutoff.
    static let purgeEvents = """
        DELETE FROM hook_events WHERE sequence IN (
            SELECT sequence FROM hook_events e
            WHERE pending = 0 AND coalesce(finished, created) < ?1
              AND sequence < (SELECT max(sequence) FROM hook_events)  -- so sequences are never reused
              AND NOT EXISTS (SELECT 1 FROM hook_deliveries d
                              WHERE d.id BETWEEN e.sequence * \(Outbox.maxTargets) AND e.sequence * \(Outbox.maxTargets) + \(Outbox.maxTargets - 1)
                                AND (d.status <> 'succeeded' OR d.updated >= ?1))
            ORDER BY sequence LIMIT ?2
        ) RETURNING sequence
        """
    static let deleteAttempts = "DELETE FROM hook_attempts WHERE delivery_id BETWEEN ? AND ?"
    static let deleteDeliveries = "DELETE FROM hook_deliveries WHERE id BETWEEN ? AND ?"
}
