import Foundation
import GRDB
import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// The outbox's tables, and the one place that knows how they are laid out: storing an event with
/// its deliveries, recording attempts, requeues, purges, and every read of them. Everything else
/// gets `Delivery`, `OutboxEvent` and `DeliveryAttempt` values from here.
///
/// The layout (see `Schema`, v5) keeps a write's cost small. An event is one lean row of integers:
/// its sequence, its id as (prefix id, counter), a type code, the rowid of its record, the id of
/// its handler set (a `hook_handler_sets` row shared by every event with the same handlers),
/// times in milliseconds. Its record's names and data are read from the record row while the
/// record is the version the event carries, and from the event's own copy once it changed. The
/// row also holds its first 64 deliveries while they simply go well: delivery n is pending while
/// bit n of `pending` is set. A delivery gets a `hook_deliveries` row of its own, with its state
/// only, when an attempt at it fails (bit n of `detached`), or from the start past the 64th
/// target; its failed attempts are `hook_attempts` rows.
///
/// A first attempt that succeeded clears its bit and adds its start (to the millisecond) and
/// duration (to the microsecond) to the row's `timings`, about two bytes (see `SuccessTimings`);
/// the row's `finished`, when the last of them was recorded, is their `updated`. So recording an
/// event's successes rewrites one row of a few dozen bytes whatever the number of handlers, and
/// the deliveries log shows each success as before. A start that is not a `Timestamp` moves its
/// delivery to a row of its own, which keeps it as given.
///
/// Writes are `WriteBatcher` operations, prepared outside the transaction where they can be;
/// reads take any transaction.
final class OutboxTables: Sendable {
    /// Deliveries an event's row can hold (a bit each in `pending` and `detached`); those past it
    /// have a row of their own from the start.
    static let eventRowTargets = 64

    /// Ids of handler sets and event id prefixes whose rows are committed, by their text: a write
    /// that finds its own here needs no lookup. Filled only after a commit, so that a rolled-back
    /// row (whose id may be handed out again) is never remembered.
    private let knownIDs = Mutex<[Interned: [String: Int64]]>([:])

    /// The small tables of distinct values that event rows refer to by id.
    enum Interned: Sendable {
        case handlerSet, idPrefix

        var insert: String {
            switch self {
            case .handlerSet: "INSERT OR IGNORE INTO hook_handler_sets (handlers) VALUES (?)"
            case .idPrefix: "INSERT OR IGNORE INTO hook_event_id_prefixes (prefix) VALUES (?)"
            }
        }

        var find: String {
            switch self {
            case .handlerSet: "SELECT id FROM hook_handler_sets WHERE handlers = ?"
            case .idPrefix: "SELECT id FROM hook_event_id_prefixes WHERE prefix = ?"
            }
        }
    }

    // MARK: - Storing an event

    /// The event `request` asks a write to record, prepared before the write is queued; nil when
    /// there is nothing to record (no request, or no targets).
    /// - Throws: `database` for more than `Outbox.maxTargets` targets.
    func prepare(_ request: OutboxRequest?, type: RecordEventType, collection: String, recordID: String,
                 timestamp: @autoclosure () -> String) throws(StoreError) -> PendingEvent? {
        guard let request = try Outbox.eventRequest(request) else { return nil }
        let created = Timestamp.currentMilliseconds()
        let timestamp = timestamp()
        let idParts = EventID.parts(request.eventID)
        let known = knownIDs.withLock { known in
            (known[.handlerSet]?[request.deliveryTargets.stored], idParts.flatMap { known[.idPrefix]?[$0.prefix] })
        }
        return PendingEvent(id: request.eventID, idParts: idParts, type: type, collection: collection, recordID: recordID,
                            timestamp: timestamp, storedTimestamp: Timestamp.milliseconds(timestamp).map { $0 - created },
                            depth: request.depth, targets: request.deliveryTargets, created: created,
                            handlerSetID: known.0, idPrefixID: known.1)
    }

    /// The sequence the next stored event gets. Purging always keeps the newest event, so a
    /// sequence is never handed out twice.
    func nextSequence(_ db: Database) throws -> Int64 {
        try db.cachedStatement(sql: OutboxSQL.nextSequence).readFirstRow({ _ in }, { $0.int(0) }) ?? 1
    }

    /// Stores `event` with its deliveries pending, and returns its sequence: `sequence`, or the
    /// next one when nil. `record` is the rowid of the event's record (nil for a delete, whose
    /// `oldData` is the record as it was): the event reads its record from that row while the
    /// record stays the version it carries (see `Schema`). Event ids are the caller's (unique by
    /// construction): the store does not pay an index to check them.
    func store(_ event: PendingEvent, sequence: Int64?, record: Int64?, oldData: String?, _ db: Database) throws -> Int64 {
        let handlerSet = try event.handlerSetID ?? intern(event.targets.stored, .handlerSet, db)
        let idPrefix = try event.idParts.map { try event.idPrefixID ?? intern($0.prefix, .idPrefix, db) }
        let count = event.targets.targets.count
        let inRow = min(count, Self.eventRowTargets)
        let pending = inRow == Self.eventRowTargets ? -1 : Self.bit(inRow) &- 1  // all 64 bits: -1
        try db.cachedStatement(sql: OutboxSQL.insertEvent).run { bind in
            bind.int(sequence)
            bind.int(idPrefix)
            if let parts = event.idParts { bind.int(parts.counter) } else { bind.text(event.id) }
            bind.int(Self.typeCode(event.type))
            bind.int(record)
            bind.int(handlerSet)
            bind.int(pending)
            bind.int(event.created)
            if let offset = event.storedTimestamp { bind.int(offset) } else { bind.text(event.timestamp) }
            bind.int(Int64(event.depth))
            bind.text(oldData)
        }
        let stored = db.lastInsertedRowID
        if count > Self.eventRowTargets {
            try db.cachedStatement(sql: OutboxSQL.insertDeliveriesPastEventRow).execute(arguments: [
                stored, Timestamp.format(millisecondsSince1970: event.created), event.targets.stored, Self.eventRowTargets,
            ])
        }
        return stored
    }

    /// The id of `text` in the `table`, its row added if there is none; remembered once the
    /// transaction commits.
    private func intern(_ text: String, _ table: Interned, _ db: Database) throws -> Int64 {
        try db.cachedStatement(sql: table.insert).execute(arguments: [text])
        guard let id = try Int64.fetchOne(db.cachedStatement(sql: table.find), arguments: [text]) else {
            throw CorruptOutbox(problem: "'\(text)' was not stored")
        }
        db.afterNextTransaction(onCommit: { _ in
            self.knownIDs.withLock { $0[table, default: [:]][text] = id }
        })
        return id
    }

    // MARK: - Recording attempts, requeues and purges

    /// Records finished attempts (see `SQLiteStore.recordAttempts`), event by event: each event's
    /// row is read and written once, whatever the number of its outcomes. A first attempt is
    /// recorded in its event's row, if its delivery still lives there and is pending: a success
    /// clears its bit and keeps its timing, a failure moves the delivery to a row of its own. Any
    /// other attempt is recorded on the delivery's row.
    func recordAttempts(_ outcomes: [AttemptOutcome]) -> WriteBatcher.Operation<Void> {
        let now = Timestamp.currentMilliseconds()
        var byEvent: [(sequence: Int64, outcomes: [AttemptRecorder.Outcome])] = []
        var positions: [Int64: Int] = [:]
        // Read here, outside the transaction; a job's outcomes share their start, read once.
        var lastStart: (text: String, milliseconds: Int64?)?
        for outcome in outcomes where outcome.deliveryID >= 0 {
            if lastStart?.text != outcome.started { lastStart = (outcome.started, Timestamp.milliseconds(outcome.started)) }
            let prepared = AttemptRecorder.Outcome(outcome: outcome, started: lastStart?.milliseconds)
            let sequence = outcome.deliveryID / Int64(Outbox.maxTargets)
            if let index = positions[sequence] {
                byEvent[index].outcomes.append(prepared)
            } else {
                positions[sequence] = byEvent.count
                byEvent.append((sequence, [prepared]))
            }
        }
        let work = byEvent
        return { db in
            let recorder = AttemptRecorder(now: now)
            for (sequence, outcomes) in work { try recorder.record(outcomes, ofEvent: sequence, db) }
        }
    }

    /// Puts a failed or dead delivery back to pending (see `SQLiteStore.requeue`).
    func requeue(_ id: Int64, force: Bool) -> WriteBatcher.Operation<Delivery> {
        let now = Timestamp.now()
        return { db in
            guard let delivery = try self.delivery(id: id, db) else { throw StoreError.deliveryNotFound(id) }
            // Failed and dead deliveries always have a row of their own.
            guard delivery.status == .failed || delivery.status == .dead else {
                throw StoreError.deliveryNotRetryable(id: id, status: delivery.status)
            }
            let newer = try self.newerSuccess(than: delivery, db)
            if let newer, !force { throw StoreError.staleRedelivery(id: id, newer: newer) }
            try db.cachedStatement(sql: OutboxSQL.requeue).execute(arguments: [now, newer != nil, id])
            guard let requeued = try self.delivery(id: id, db) else {
                throw CorruptOutbox(problem: "delivery \(id) vanished while requeued")
            }
            return requeued
        }
    }

    /// Deletes old events whose deliveries all succeeded (see `SQLiteStore.purgeSucceeded`).
    /// - Throws: `database` if `cutoff` is not a timestamp as `Timestamp` writes them.
    func purge(before cutoff: String, batchSize: Int) throws(StoreError) -> WriteBatcher.Operation<Int> {
        guard let cutoffMilliseconds = Timestamp.milliseconds(cutoff) else { throw .database("'\(cutoff)' is not a timestamp") }
        return { db in
            let purged = try Int64.fetchAll(db.cachedStatement(sql: OutboxSQL.purgeEvents),
                                            arguments: [cutoffMilliseconds, cutoff, batchSize])
            let attempts = try db.cachedStatement(sql: OutboxSQL.deleteAttempts)
            let deliveries = try db.cachedStatement(sql: OutboxSQL.deleteDeliveries)
            for sequence in purged {
                let range = Self.deliveryIDs(of: sequence)
                let bounds: StatementArguments = [range.lowerBound, range.upperBound]
                try attempts.execute(arguments: bounds) // failed attempts of deliveries that succeeded later
                try deliveries.execute(arguments: bounds)
            }
            return purged.count
        }
    }

    // MARK: - Reading

    /// `unfinishedDeliveries()` of the events from sequence `from` on, at most `events` events,
    /// so a long backlog can be read a part at a time. `next` is the sequence to go on from, or
    /// nil when everything unfinished from `from` on was read.
    func unfinished(from: Int64, events limit: Int, _ db: Database) throws -> UnfinishedDeliveries {
        // Events with a pending delivery in their row, and events with an unfinished row.
        var sequences = try MergedSequences([
            Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.eventsPendingInRow(descending: false)), arguments: [from]),
            Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.unfinishedRowEvents), arguments: [from * Int64(Outbox.maxTargets)]),
        ], descending: false)
        var lookups = Lookups()
        var result: [(delivery: Delivery, event: OutboxEvent)] = []
        for _ in 0..<max(limit, 1) {
            guard let sequence = try sequences.next() else { return (result, nil) }
            guard let (stored, event) = try eventWithData(sequence, &lookups, db) else { continue }
            for delivery in try deliveries(of: stored, db) where delivery.status == .pending || delivery.status == .failed {
                result.append((delivery, event))
            }
        }
        return (result, try sequences.next())
    }

    /// Deliveries matching `filter`, newest first (id descending), at most `filter.limit`
    /// (clamped to 1...1000).
    func deliveries(_ filter: DeliveryFilter, _ db: Database) throws -> [Delivery] {
        let limit = min(max(filter.limit, 1), 1000)
        let collection: StatementArguments = filter.collection.map { [$0] } ?? []
        let allEvents = { try Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.events(ofCollection: filter.collection != nil)),
                                                arguments: collection) }
        let rowEvents = { (status: DeliveryStatus) in
            try Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.rowEvents), arguments: [status.rawValue])
        }
        // An event's row holds pending and succeeded deliveries; failed and dead ones have rows.
        let streams: [any Cursor<Int64>]
        switch filter.status {
        case nil, .succeeded?: streams = [try allEvents()]
        case .pending?: streams = [try Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.eventsPendingInRow(descending: true)), arguments: [0]),
                                   try rowEvents(.pending)]
        case .failed?, .dead?: streams = [try rowEvents(filter.status!)]
        case .running?: streams = [] // never stored
        }
        var sequences = try MergedSequences(streams, descending: true)
        var lookups = Lookups()
        var result: [Delivery] = []
        while result.count < limit, let sequence = try sequences.next() {
            guard let event = try summary(sequence, &lookups, db), filter.collection.map({ $0 == event.collection }) ?? true,
                  filter.handler.map({ handler in event.targets.contains { $0.handler == handler } }) ?? true else { continue }
            for delivery in try deliveries(of: event, db).reversed()
            where (filter.status.map { $0 == delivery.status } ?? true) && (filter.handler.map { $0 == delivery.handler } ?? true) {
                result.append(delivery)
                if result.count == limit { break }
            }
        }
        return result
    }

    /// One delivery; nil if there is none.
    func delivery(id: Int64, _ db: Database) throws -> Delivery? {
        var lookups = Lookups()
        guard id >= 0, let event = try summary(id / Int64(Outbox.maxTargets), &lookups, db) else { return nil }
        return try deliveries(of: event, db).first { $0.id == id }
    }

    /// Every recorded attempt of a delivery, by attempt number: the failed ones, then the one that
    /// succeeded; nil if there is no such delivery.
    func attempts(deliveryID: Int64, _ db: Database) throws -> [DeliveryAttempt]? {
        var lookups = Lookups()
        guard deliveryID >= 0, let event = try summary(deliveryID / Int64(Outbox.maxTargets), &lookups, db),
              let delivery = try deliveries(of: event, db).first(where: { $0.id == deliveryID }) else { return nil }
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
        if delivery.status == .succeeded, let success = try success(of: delivery, in: event, db) {
            result.append(attempt(delivery.attempts, succeeded: true, started: success.started, duration: success.duration, error: nil))
        }
        return result
    }

    /// One stored event; nil if there is none (purged, or never stored).
    func event(sequence: Int64, _ db: Database) throws -> OutboxEvent? {
        var lookups = Lookups()
        return try eventWithData(sequence, &lookups, db)?.event
    }

    /// Rows in the outbox tables (for tests and diagnostics).
    func rowCounts(_ db: Database) throws -> (events: Int, deliveries: Int, attempts: Int) {
        let row = try Row.fetchOne(db, sql: """
            SELECT (SELECT count(*) FROM hook_events), (SELECT count(*) FROM hook_deliveries),
                   (SELECT count(*) FROM hook_attempts)
            """)!
        return (try row.decode(atIndex: 0), try row.decode(atIndex: 1), try row.decode(atIndex: 2))
    }

    /// The newest delivery to `delivery`'s handler of a later event of its record that succeeded.
    /// A manual operation: it walks the events after `delivery`'s, newest first, rather than have
    /// every write pay for an index.
    private func newerSuccess(than delivery: Delivery, _ db: Database) throws -> Int64? {
        let liveRecord = try Int64.fetchOne(db.cachedStatement(sql: SQL.recordRowID), arguments: [delivery.collection, delivery.recordID])
        let later = try Int64.fetchCursor(db.cachedStatement(sql: OutboxSQL.laterEventsOfRecord), arguments: [
            delivery.eventSequence, liveRecord, delivery.collection, delivery.recordID,
        ])
        var lookups = Lookups()
        while let sequence = try later.next() {
            guard let event = try summary(sequence, &lookups, db) else { continue }
            if let found = try deliveries(of: event, db).first(where: { $0.handler == delivery.handler && $0.status == .succeeded }) {
                return found.id
            }
        }
        return nil
    }
}

// MARK: - Rows

extension OutboxTables {
    static func bit(_ position: Int) -> Int64 {
        Int64(1) << position
    }

    /// The ids an event's deliveries can have.
    static func deliveryIDs(of sequence: Int64) -> ClosedRange<Int64> {
        Outbox.deliveryID(sequence: sequence, position: 0)...Outbox.deliveryID(sequence: sequence, position: Outbox.maxTargets - 1)
    }

    /// The targets whose first success an event's row keeps a timing of, in order: those it holds
    /// (pending and detached bits clear) among the first 64, of which the row's timings have
    /// `count`; the positions past the last target come after all of them.
    static func succeededInRow(pending: Int64, detached: Int64, count: Int) -> [Int] {
        var positions: [Int] = []
        var position = 0
        while positions.count < count, position < eventRowTargets {
            if (pending | detached) & bit(position) == 0 { positions.append(position) }
            position += 1
        }
        return positions
    }

    /// An event as its row stores it, with what its deliveries need.
    struct StoredEvent {
        var sequence: Int64
        var id: String
        var type: RecordEventType
        var targets: [DeliveryTarget]
        var pending: Int64
        var detached: Int64
        /// Milliseconds since 1970.
        var created: Int64
        var timestamp: String
        var finished: Int64?
        var timings: [UInt8]?
        var depth: Int
        var collection: String
        var recordID: String
    }

    /// Handler sets and id prefixes by id, each read once per call.
    struct Lookups {
        private var handlerSets: [Int64: [DeliveryTarget]] = [:]
        private var idPrefixes: [Int64: String] = [:]

        mutating func targets(_ id: Int64, _ db: Database) throws -> [DeliveryTarget] {
            if let known = handlerSets[id] { return known }
            let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.handlerSet), arguments: [id])
            guard let row, case .array(let pairs)? = try OutboxTables.json(row, at: 0, of: "handler set \(id)") else {
                throw CorruptOutbox(problem: "handler set \(id) is missing or not a JSON array")
            }
            let targets = try pairs.map { pair in
                guard case .array(let parts) = pair, parts.count == 2, case .string(let handler) = parts[0],
                      case .int(let maxAttempts) = parts[1] else {
                    throw CorruptOutbox(problem: "handler set \(id) has an element that is not [key, max attempts]")
                }
                return DeliveryTarget(handler: handler, maxAttempts: Int(maxAttempts))
            }
            handlerSets[id] = targets
            return targets
        }

        mutating func idPrefix(_ id: Int64, _ db: Database) throws -> String {
            if let known = idPrefixes[id] { return known }
            guard let prefix = try String.fetchOne(db.cachedStatement(sql: OutboxSQL.idPrefix), arguments: [id]) else {
                throw CorruptOutbox(problem: "event id prefix \(id) is missing")
            }
            idPrefixes[id] = prefix
            return prefix
        }
    }

    /// An event without its data (`OutboxSQL.eventSummary`); nil if there is none.
    func summary(_ sequence: Int64, _ lookups: inout Lookups, _ db: Database) throws -> StoredEvent? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.eventSummary), arguments: [sequence]) else { return nil }
        guard let collection: String = try row.decode(atIndex: OutboxSQL.coreColumnCount),
              let recordID: String = try row.decode(atIndex: OutboxSQL.coreColumnCount + 1) else {
            throw CorruptOutbox(problem: "the record of event \(sequence) is missing")
        }
        return try Self.decodeCore(row, collection: collection, recordID: recordID, &lookups, db)
    }

    /// An event with its data (`OutboxSQL.eventWithData`); nil if there is none.
    func eventWithData(_ sequence: Int64, _ lookups: inout Lookups,
                       _ db: Database) throws -> (stored: StoredEvent, event: OutboxEvent)? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.eventWithData), arguments: [sequence]) else { return nil }
        guard case .object(let data)? = try Self.json(row, at: OutboxSQL.coreColumnCount, of: "event \(sequence)"),
              case .string(let collection)? = data["collection"], case .string(let recordID)? = data["id"] else {
            throw CorruptOutbox(problem: "the data of event \(sequence) is missing or not a record")
        }
        var oldData: JSONObject?
        switch try Self.json(row, at: OutboxSQL.coreColumnCount + 1, of: "event \(sequence)") {
        case .object(let object)?: oldData = object
        case nil: oldData = nil
        default: throw CorruptOutbox(problem: "the old data of event \(sequence) is not a JSON object")
        }
        let stored = try Self.decodeCore(row, collection: collection, recordID: recordID, &lookups, db)
        let event = OutboxEvent(sequence: sequence, event: RecordEvent(
            id: stored.id, type: stored.type, collection: collection, recordID: recordID, data: data, oldData: oldData,
            timestamp: stored.timestamp, depth: stored.depth))
        return (stored, event)
    }

    /// Reads the columns of `OutboxSQL.coreColumns`.
    private static func decodeCore(_ row: Row, collection: String, recordID: String, _ lookups: inout Lookups,
                                   _ db: Database) throws -> StoredEvent {
        let sequence: Int64 = try row.decode(atIndex: 0)
        let id: String
        let storedID: DatabaseValue = row[2]
        switch (try row.decode(atIndex: 1) as Int64?, storedID) {
        case (let prefix?, let value):
            guard let counter = Int64.fromDatabaseValue(value) else { throw CorruptOutbox(problem: "the id of event \(sequence) is not a counter") }
            id = EventID.format(prefix: try lookups.idPrefix(prefix, db), counter: counter)
        case (nil, let value):
            guard let text = String.fromDatabaseValue(value) else { throw CorruptOutbox(problem: "the id of event \(sequence) is not text") }
            id = text
        }
        let created: Int64 = try row.decode(atIndex: 7)
        let storedTimestamp: DatabaseValue = row[8]
        let timestamp: String
        switch storedTimestamp.storage {
        case .int64(let offset): timestamp = Timestamp.format(millisecondsSince1970: created + offset)
        case .string(let text): timestamp = text
        default: throw CorruptOutbox(problem: "the timestamp of event \(sequence) is neither milliseconds nor text")
        }
        let finished: Int64? = try row.decode(atIndex: 9)
        return StoredEvent(
            sequence: sequence, id: id, type: try eventType(code: try row.decode(atIndex: 3)),
            targets: try lookups.targets(try row.decode(atIndex: 4), db), pending: try row.decode(atIndex: 5),
            detached: try row.decode(atIndex: 6), created: created, timestamp: timestamp, finished: finished.map { created + $0 },
            timings: (try row.decode(atIndex: 10) as Data?).map { [UInt8]($0) }, depth: try row.decode(atIndex: 11),
            collection: collection, recordID: recordID)
    }

    /// An event's deliveries, by target: those its row holds, and those with a row of their own.
    func deliveries(of event: StoredEvent, _ db: Database) throws -> [Delivery] {
        var rows: [Int64: Row] = [:]
        if event.detached != 0 || event.targets.count > Self.eventRowTargets {
            let range = Self.deliveryIDs(of: event.sequence)
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: OutboxSQL.deliveryRows), arguments: [range.lowerBound, range.upperBound])
            while let row = try cursor.next() { rows[try row.decode(atIndex: 0)] = row.copy() } // a cursor reuses its row
        }
        let created = Timestamp.format(millisecondsSince1970: event.created)
        let finished = event.finished.map { Timestamp.format(millisecondsSince1970: $0) } ?? created
        var result: [Delivery] = []
        result.reserveCapacity(event.targets.count)
        for (position, target) in event.targets.enumerated() {
            let id = Outbox.deliveryID(sequence: event.sequence, position: position)
            func delivery(_ status: DeliveryStatus, attempts: Int, maxAttempts: Int, nextAttemptAt: Int64? = nil, lastError: String? = nil,
                          updated: String, redelivered: Bool = false) -> Delivery {
                Delivery(id: id, eventSequence: event.sequence, eventID: event.id, handler: target.handler, collection: event.collection,
                         recordID: event.recordID, status: status, attempts: attempts, maxAttempts: maxAttempts,
                         nextAttemptAt: nextAttemptAt, lastError: lastError, created: created, updated: updated, redelivered: redelivered)
            }
            if position < Self.eventRowTargets, event.detached & Self.bit(position) == 0 {
                let pending = event.pending & Self.bit(position) != 0
                result.append(pending ? delivery(.pending, attempts: 0, maxAttempts: target.maxAttempts, updated: created)
                                      : delivery(.succeeded, attempts: 1, maxAttempts: target.maxAttempts, updated: finished))
            } else if let row = rows[id] {
                let status: String = try row.decode(atIndex: 1)
                guard let status = DeliveryStatus(rawValue: status) else { throw CorruptOutbox(problem: "unknown delivery status '\(status)'") }
                result.append(delivery(status, attempts: try row.decode(atIndex: 2), maxAttempts: try row.decode(atIndex: 3),
                                       nextAttemptAt: try row.decode(atIndex: 4), lastError: try row.decode(atIndex: 5),
                                       updated: try row.decode(atIndex: 6), redelivered: try row.decode(atIndex: 7)))
            }
        }
        return result
    }

    /// When the successful attempt at a succeeded delivery started, and how long it took.
    private func success(of delivery: Delivery, in event: StoredEvent, _ db: Database) throws -> (started: String, duration: Double)? {
        let position = Int(delivery.id % Int64(Outbox.maxTargets))
        guard position < Self.eventRowTargets, event.detached & Self.bit(position) == 0 else {
            let row = try Row.fetchOne(db.cachedStatement(sql: OutboxSQL.lastSuccess), arguments: [delivery.id])
            guard let row, let started: String = try row.decode(atIndex: 0), let duration: Double = try row.decode(atIndex: 1) else { return nil }
            return (started, duration)
        }
        guard let bytes = event.timings, let timings = SuccessTimings(bytes, created: event.created) else { return nil }
        let positions = Self.succeededInRow(pending: event.pending, detached: event.detached, count: timings.entries.count)
        guard let index = positions.firstIndex(of: position) else { return nil }
        let entry = timings.entries[index]
        return (Timestamp.format(millisecondsSince1970: entry.started), Double(entry.microseconds) / 1000)
    }

    /// Parses a JSON column straight from SQLite's buffer; nil for NULL.
    static func json(_ row: Row, at index: Int, of owner: @autoclosure () -> String) throws -> JSONValue? {
        try row.withUnsafeData(atIndex: index) { data -> JSONValue? in
            guard let data else { return nil }
            do {
                return try data.withUnsafeBytes { bytes in try JSONValue.parse(bytes) }
            } catch {
                throw CorruptOutbox(problem: "JSON of \(owner()) is unreadable: \(error)")
            }
        }
    }
}

/// Records the outcomes of one transaction's attempts, event by event.
struct AttemptRecorder {
    /// An outcome, and its start in milliseconds since 1970 if it is a `Timestamp`.
    struct Outcome {
        var outcome: AttemptOutcome
        var started: Int64?
    }

    /// Milliseconds since 1970, and as text for the rows of their own.
    let now: Int64
    let nowText: String

    init(now: Int64) {
        self.now = now
        nowText = Timestamp.format(millisecondsSince1970: now)
    }

    /// Records `outcomes`, all of event `sequence`'s deliveries; an unknown event's change nothing.
    func record(_ outcomes: [Outcome], ofEvent sequence: Int64, _ db: Database) throws {
        let state = try db.cachedStatement(sql: OutboxSQL.attemptState).readFirstRow({ $0.int(sequence) }) { row in
            (handlerSet: row.int(0), created: row.int(1), pending: row.int(2), detached: row.int(3), finished: row.optionalInt(4),
             timings: row.bytes(5))
        }
        guard let state else { return }
        let (handlerSet, created) = (state.handlerSet, state.created)
        var (pending, detached, finished) = (state.pending, state.detached, state.finished)
        guard let stored = SuccessTimings(state.timings, created: created) else {
            throw CorruptOutbox(problem: "the success timings of event \(sequence) are unreadable")
        }
        // By target, those the row holds a timing of.
        var timings = [SuccessTimings.Entry?](repeating: nil, count: OutboxTables.eventRowTargets)
        for (position, entry) in zip(OutboxTables.succeededInRow(pending: pending, detached: detached, count: stored.entries.count),
                                     stored.entries) {
            timings[position] = entry
        }
        let unchanged = (pending, detached)
        for item in outcomes {
            let outcome = item.outcome
            let position = Int(outcome.deliveryID % Int64(Outbox.maxTargets))
            guard outcome.attempt == 1, position < OutboxTables.eventRowTargets else {
                try recordOnRow(outcome, db)
                continue
            }
            // A first attempt: recorded only while its delivery is pending in the event's row (it
            // may have been recorded before, or moved out by its failure).
            let bit = OutboxTables.bit(position)
            guard pending & bit != 0 else { continue }
            pending &= ~bit
            if outcome.error == nil, let started = item.started {
                timings[position] = SuccessTimings.Entry(started: started, microseconds: SuccessTimings.microseconds(outcome.durationMilliseconds))
                finished = now - created
            } else {
                // A failure, or a success whose start the row cannot keep: a row of its own.
                try detach(outcome, handlerSet: handlerSet, position: position, db)
                detached |= bit
            }
        }
        guard (pending, detached) != unchanged else { return }
        let kept = timings.compactMap { $0 }
        try db.cachedStatement(sql: OutboxSQL.updateEventDeliveries).run { bind in
            bind.int(pending)
            bind.int(detached)
            bind.int(finished)
            if kept.isEmpty { bind.null() } else { bind.blob(SuccessTimings(kept).encoded(created: created)) }
            bind.int(sequence)
        }
    }

    /// A first attempt that moves its delivery out of its event's row, to a row of its own.
    private func detach(_ outcome: AttemptOutcome, handlerSet: Int64, position: Int, _ db: Database) throws {
        let failed = outcome.error != nil
        try db.cachedStatement(sql: OutboxSQL.detach).execute(arguments: [
            outcome.deliveryID, outcome.status.rawValue, outcome.attempt, position, failed ? outcome.nextAttemptAt : nil,
            outcome.error, failed ? nil : outcome.started, failed ? nil : outcome.durationMilliseconds, nowText, handlerSet,
        ])
        if failed { try insertAttempt(outcome, db) }
    }

    /// An attempt at a delivery with a row of its own; an unknown id changes nothing.
    private func recordOnRow(_ outcome: AttemptOutcome, _ db: Database) throws {
        if outcome.error == nil {
            try db.cachedStatement(sql: OutboxSQL.updateAfterSuccess).execute(arguments: [
                outcome.status.rawValue, outcome.attempt, outcome.started, outcome.durationMilliseconds, nowText, outcome.deliveryID,
            ])
        } else {
            try db.cachedStatement(sql: OutboxSQL.updateAfterFailure).execute(arguments: [
                outcome.status.rawValue, outcome.attempt, outcome.nextAttemptAt, outcome.error, nowText, outcome.deliveryID,
            ])
            if db.changesCount == 1 { try insertAttempt(outcome, db) }
        }
    }

    private func insertAttempt(_ outcome: AttemptOutcome, _ db: Database) throws {
        try db.cachedStatement(sql: OutboxSQL.insertAttempt).execute(arguments: [
            outcome.deliveryID, outcome.attempt, false, outcome.started, outcome.durationMilliseconds, outcome.error,
        ])
    }
}

/// Ascending or descending streams of event sequences merged into one, without repeats.
struct MergedSequences {
    private var streams: [(cursor: any Cursor<Int64>, head: Int64?)]
    private let descending: Bool

    init(_ cursors: [any Cursor<Int64>], descending: Bool) throws {
        streams = try cursors.map { ($0, try $0.next()) }
        self.descending = descending
    }

    mutating func next() throws -> Int64? {
        let heads = streams.compactMap(\.head)
        guard let next = descending ? heads.max() : heads.min() else { return nil }
        for index in streams.indices where streams[index].head == next {
            streams[index].head = try streams[index].cursor.next()
        }
        return next
    }
}

/// An event a write was asked to record, prepared before the write is queued (see
/// `OutboxTables.prepare`).
struct PendingEvent: Sendable {
    let id: String
    /// The id's prefix and counter, when it is one `EventID` made.
    let idParts: (prefix: String, counter: Int64)?
    let type: RecordEventType
    let collection: String
    let recordID: String
    let timestamp: String
    /// `timestamp` as milliseconds after `created`, when it is a `Timestamp`.
    let storedTimestamp: Int64?
    let depth: Int
    let targets: DeliveryTargets
    /// The deliveries' `created` and `updated`: milliseconds since 1970.
    let created: Int64
    /// The committed ids of its handler set and id prefix, if they were known when it was prepared.
    let handlerSetID: Int64?
    let idPrefixID: Int64?

    /// What the write returns once the event is stored with `sequence`.
    /// `elsewhere`: the deliveries left for another node (see `NewDeliveries.elsewhere`).
    func result(sequence: Int64, elsewhere: [Int] = [], record: MoonbaseModel.Record, data: JSONObject, oldData: JSONObject?) -> WriteResult {
        let deliveries = NewDeliveries(eventSequence: sequence, eventID: id, collection: collection, recordID: recordID,
                                       targets: targets.targets, created: Timestamp.format(millisecondsSince1970: created),
                                       elsewhere: elsewhere)
        let event = OutboxEvent(sequence: sequence, event: RecordEvent(
            id: id, type: type, collection: collection, recordID: recordID, data: data, oldData: oldData, timestamp: timestamp, depth: depth))
        return WriteResult(record: record, event: event, deliveries: deliveries)
    }
}

/// Stored outbox rows cannot be read back (edited by hand or damaged). Not a `StoreError`, so
/// that inside a write batch it rolls the transaction back; reads report it as `database`.
struct CorruptOutbox: Error, CustomStringConvertible {
    let problem: String
    var description: String { "outbox data is unreadable: \(problem)" }
}
