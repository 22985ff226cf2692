import Foundation
import GRDB
import MoonbaseJSON
import MoonbaseModel

/// The database layout and the SQL the store runs.
///
/// Every collection shares one `records` table: a collection is a row in `collections`, not a table
/// of its own, so creating one is cheap and no SQL is ever built from a user's name.
enum Schema {
    /// Migrations run at every open; GRDB records which ran, so opening an existing file again
    /// does nothing. Append new migrations, never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: collections and records") { db in
            try db.execute(sql: """
                CREATE TABLE collections (
                    name         TEXT NOT NULL PRIMARY KEY,
                    created      TEXT NOT NULL,
                    record_count INTEGER NOT NULL DEFAULT 0  -- kept by the triggers below
                ) WITHOUT ROWID;

                -- A rowid table on purpose: the rowid is the tie-break that keeps listings stable
                -- when timestamps are equal (they have millisecond resolution).
                CREATE TABLE records (
                    collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
                    id         TEXT NOT NULL,
                    created    TEXT NOT NULL,
                    updated    TEXT NOT NULL,
                    version    INTEGER NOT NULL,
                    data       TEXT NOT NULL,   -- JSON object of the user's fields
                    PRIMARY KEY (collection, id)
                );
                -- Every index entry ends with the rowid, so these serve
                -- `WHERE collection = ? ORDER BY created, rowid` (either direction) without sorting.
                CREATE INDEX records_by_created ON records(collection, created);
                CREATE INDEX records_by_updated ON records(collection, updated);

                -- Listings report the total; COUNT(*) walks the whole collection (~0.1 µs a
                -- record), so the count is kept up to date in the same statement as each write.
                CREATE TRIGGER records_count_insert AFTER INSERT ON records BEGIN
                    UPDATE collections SET record_count = record_count + 1 WHERE name = NEW.collection;
                END;
                CREATE TRIGGER records_count_delete AFTER DELETE ON records BEGIN
                    UPDATE collections SET record_count = record_count - 1 WHERE name = OLD.collection;
                END;
                """)
        }
        migrator.registerMigration("v2: hook outbox") { db in
            try db.execute(sql: """
                -- One row per committed write that has after-handlers, written in the write's own
                -- transaction. It also holds the event's deliveries while they simply go well, so a
                -- write costs one row whatever the number of handlers: delivery n (id sequence *
                -- 1000 + n) is element n of `handlers`, pending while bit n of `pending` is set,
                -- succeeded once it is clear. A delivery moves to a hook_deliveries row of its own
                -- when an attempt at it fails (bit n of `detached`; from the start past the 64th).
                -- No foreign keys: an event outlives its record and collection, and a constraint
                -- checked on every write would cost more than it protects (the hot path keeps as
                -- few indexes as it can: every one is paid on each write). The small columns come
                -- first, so reading them never touches the pages of a large record.
                CREATE TABLE hook_events (
                    sequence   INTEGER PRIMARY KEY,  -- commit order
                    id         TEXT NOT NULL,
                    type       TEXT NOT NULL,     -- record.created | record.updated | record.deleted
                    collection TEXT NOT NULL,
                    record_id  TEXT NOT NULL,
                    handlers   TEXT NOT NULL,     -- JSON: [[handler key, max attempts], …]
                    pending    INTEGER NOT NULL,  -- bit n: delivery n has not succeeded (n < 64)
                    detached   INTEGER NOT NULL DEFAULT 0,  -- bit n: delivery n has its own row
                    created    TEXT NOT NULL,     -- the deliveries' `created`
                    finished   TEXT,              -- when a success was last recorded here
                    succeeded  TEXT,              -- JSON: {"n": [started, duration ms]} of those successes
                    timestamp  TEXT NOT NULL,
                    depth      INTEGER NOT NULL DEFAULT 0,  -- writes by handlers that led to this one
                    data       TEXT NOT NULL,     -- JSON: the record after the write (delete: as it was)
                    old_data   TEXT               -- JSON: the record before an update or delete
                );
                -- What start-up takes up; an entry lives from the write until its deliveries succeeded.
                CREATE INDEX hook_events_unfinished ON hook_events(sequence) WHERE pending <> 0;

                -- The deliveries that did not simply succeed at their first attempt (off the hot
                -- path). A successful attempt is recorded on the row itself (last_started,
                -- last_duration_ms); failed ones also get a hook_attempts row. An event's rows are
                -- the id range sequence * 1000 …+ 999, so they need no index of their own.
                CREATE TABLE hook_deliveries (
                    id              INTEGER PRIMARY KEY,
                    event_sequence  INTEGER NOT NULL,
                    handler         TEXT NOT NULL,
                    collection      TEXT NOT NULL,
                    record_id       TEXT NOT NULL,
                    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
                    attempts        INTEGER NOT NULL DEFAULT 0,
                    max_attempts    INTEGER NOT NULL,
                    next_attempt_at INTEGER,     -- ms since 1970, for failed deliveries
                    last_error      TEXT,
                    last_started    TEXT,
                    last_duration_ms REAL,
                    created         TEXT NOT NULL,
                    updated         TEXT NOT NULL
                );
                CREATE INDEX hook_deliveries_unfinished ON hook_deliveries(status) WHERE status <> 'succeeded';

                -- The failed attempts.
                CREATE TABLE hook_attempts (
                    id          INTEGER PRIMARY KEY,
                    delivery_id INTEGER NOT NULL,
                    attempt     INTEGER NOT NULL,
                    succeeded   INTEGER NOT NULL,  -- 0 or 1
                    started     TEXT NOT NULL,
                    duration_ms REAL NOT NULL,
                    error       TEXT
                );
                CREATE INDEX hook_attempts_by_delivery ON hook_attempts(delivery_id, attempt);
                """)
        }
        migrator.registerMigration("v3: events refer to the record they carry") { db in
            // Copying the record into its event was the largest share of what the outbox added to
            // a write. Now an event of a create or update leaves `data` NULL while the record still
            // is that version (the record row names it in `event`); a trigger copies the version
            // into the event just before the record changes or goes. A delete's `data` is its
            // `old_data`. The table is rebuilt because `data` was NOT NULL.
            try db.execute(sql: """
                ALTER TABLE records ADD COLUMN event INTEGER;  -- the event whose `data` is this version

                CREATE TABLE hook_events_v3 (
                    sequence   INTEGER PRIMARY KEY,  -- commit order; purging keeps the last, so never reused
                    id         TEXT NOT NULL,
                    type       TEXT NOT NULL,     -- record.created | record.updated | record.deleted
                    collection TEXT NOT NULL,
                    record_id  TEXT NOT NULL,
                    handlers   TEXT NOT NULL,     -- JSON: [[handler key, max attempts], …]
                    pending    INTEGER NOT NULL,  -- bit n: delivery n has not succeeded (n < 64)
                    detached   INTEGER NOT NULL DEFAULT 0,  -- bit n: delivery n has its own row
                    created    TEXT NOT NULL,     -- the deliveries' `created`
                    finished   TEXT,              -- when a success was last recorded here
                    succeeded  TEXT,              -- JSON: {"n": [started, duration ms]} of those successes
                    timestamp  TEXT NOT NULL,
                    depth      INTEGER NOT NULL DEFAULT 0,  -- writes by handlers that led to this one
                    data       TEXT,  -- JSON: the record after the write; NULL: see above
                    old_data   TEXT   -- JSON: the record before an update or delete
                );
                INSERT INTO hook_events_v3 SELECT * FROM hook_events;  -- the same columns, in the same order
                DROP TABLE hook_events;
                ALTER TABLE hook_events_v3 RENAME TO hook_events;
                CREATE INDEX hook_events_unfinished ON hook_events(sequence) WHERE pending <> 0;

                CREATE TRIGGER records_event_data_on_update BEFORE UPDATE OF data ON records WHEN OLD.event IS NOT NULL BEGIN
                    \(keepEventDataOfV3)
                END;
                CREATE TRIGGER records_event_data_on_delete BEFORE DELETE ON records WHEN OLD.event IS NOT NULL BEGIN
                    \(keepEventDataOfV3)
                END;
                """)
        }
        migrator.registerMigration("v4: forced redeliveries") { db in
            // A delivery sent again by hand although a later one of its record to its handler had
            // succeeded: its handler is told (`event.redelivered`), even after a restart.
            try db.execute(sql: "ALTER TABLE hook_deliveries ADD COLUMN redelivered INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v5: lean event rows") { db in
            // The event row repeated text and JSON on every write (the event id, type, collection
            // and record id, about 60 bytes a handler key) and rewrote a JSON object of timings at
            // every success: 1,780 bytes per record with ten after-handlers, 397 without. Now the
            // row holds integers, and what the log and the Lua event need is read from elsewhere.
            // Deliveries keep their ids, states and timings; see `leanEventRows`.
            try db.execute(sql: """
                DROP TRIGGER records_event_data_on_update;
                DROP TRIGGER records_event_data_on_delete;

                -- The distinct sets of after-handlers: an event refers to its set. Few rows, never deleted.
                CREATE TABLE hook_handler_sets (
                    id       INTEGER PRIMARY KEY,
                    handlers TEXT NOT NULL UNIQUE  -- JSON: [[handler key, max attempts], …]
                );
                -- Event ids are "evt_", a prefix chosen when the server starts, and a counter: an
                -- event keeps the prefix's id and the counter. A row per server start, never deleted.
                CREATE TABLE hook_event_id_prefixes (
                    id     INTEGER PRIMARY KEY,
                    prefix TEXT NOT NULL UNIQUE
                );
                -- `id` and `timestamp` have no type, so no affinity: each holds an integer or, for a
                -- value the server did not make itself, the text as given.
                CREATE TABLE hook_events_v5 (
                    sequence  INTEGER PRIMARY KEY,  -- commit order; purging keeps the last, so never reused
                    prefix    INTEGER,              -- hook_event_id_prefixes.id; NULL: `id` is the whole id
                    id        NOT NULL,             -- the id's counter, or (no prefix) the id as given
                    type      INTEGER NOT NULL,     -- 0 record.created, 1 record.updated, 2 record.deleted
                    record    INTEGER,              -- rowid of the record (create, update): see `data`
                    handlers  INTEGER NOT NULL,     -- hook_handler_sets.id; delivery n is element n
                    pending   INTEGER NOT NULL,     -- bit n: delivery n has not succeeded (n < 64)
                    detached  INTEGER NOT NULL DEFAULT 0,  -- bit n: delivery n has its own row
                    created   INTEGER NOT NULL,     -- ms since 1970: the deliveries' `created`
                    timestamp NOT NULL,             -- ms after `created` (usually 0: no bytes), or as given
                    finished  INTEGER,              -- ms after `created` when a success was last recorded here
                    timings   BLOB,                 -- start and duration of each first success recorded here
                    depth     INTEGER NOT NULL DEFAULT 0,  -- writes by handlers that led to this one
                    -- JSON: the record after the write. NULL while the record row named by `record`
                    -- is still that version (it names the event in `event`); a trigger copies the
                    -- version here before the record changes or goes. A delete's is its `old_data`.
                    -- The record's collection and id are read from the same place.
                    data      TEXT,
                    old_data  TEXT                  -- JSON: the record before an update or delete
                );
                -- A delivery's row of its own holds its state only: its event, handler and `created`
                -- are its event's (its id is the event's sequence * 1000 + its target).
                CREATE TABLE hook_deliveries_v5 (
                    id               INTEGER PRIMARY KEY,
                    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
                    attempts         INTEGER NOT NULL DEFAULT 0,
                    max_attempts     INTEGER NOT NULL,  -- the handler set's, raised by a requeue
                    next_attempt_at  INTEGER,           -- ms since 1970, for failed deliveries
                    last_error       TEXT,
                    last_started     TEXT,              -- of the successful attempt
                    last_duration_ms REAL,
                    updated          TEXT NOT NULL,
                    redelivered      INTEGER NOT NULL DEFAULT 0  -- sent again by hand over a newer success
                );
                """)
            try leanEventRows(db)
            try db.execute(sql: """
                INSERT INTO hook_deliveries_v5
                SELECT id, status, attempts, max_attempts, next_attempt_at, last_error, last_started, last_duration_ms, updated, redelivered
                FROM hook_deliveries;
                DROP TABLE hook_events;
                DROP TABLE hook_deliveries;
                ALTER TABLE hook_events_v5 RENAME TO hook_events;
                ALTER TABLE hook_deliveries_v5 RENAME TO hook_deliveries;
                CREATE INDEX hook_events_unfinished ON hook_events(sequence) WHERE pending <> 0;
                CREATE INDEX hook_deliveries_unfinished ON hook_deliveries(status) WHERE status <> 'succeeded';

                CREATE TRIGGER records_event_data_on_update BEFORE UPDATE OF data ON records WHEN OLD.event IS NOT NULL BEGIN
                    \(keepEventData)
                END;
                CREATE TRIGGER records_event_data_on_delete BEFORE DELETE ON records WHEN OLD.event IS NOT NULL BEGIN
                    \(keepEventData)
                END;
                """)
        }
        migrator.registerMigration("v6: cron runs") { db in
            // Cron hooks: the claimed runs (one per name and slot), their attempts, and what is
            // known of each cron (see `CronSQL`).
            try CronSQL.createTables(db)
        }
        return migrator
    }

    /// Copies v4's event rows into v5's lean ones (`hook_events_v5`): the same events, with the
    /// same deliveries, success timings and data.
    private static func leanEventRows(_ db: Database) throws {
        var handlerSets: [String: (id: Int64, count: Int)] = [:]
        var prefixes: [String: Int64] = [:]
        func intern(_ text: String, _ table: OutboxTables.Interned) throws -> Int64 {
            try db.execute(sql: table.insert, arguments: [text])
            return try Int64.fetchOne(db, sql: table.find, arguments: [text])!
        }
        let insert = try db.makeStatement(sql: """
            INSERT INTO hook_events_v5 (sequence, prefix, id, type, record, handlers, pending, detached, created, timestamp,
                                        finished, timings, depth, data, old_data)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let events = try Row.fetchCursor(db, sql: """
            SELECT sequence, id, type, collection, record_id, handlers, pending, detached, created, finished, succeeded,
                   timestamp, depth, data, old_data
            FROM hook_events ORDER BY sequence
            """)
        while let row = try events.next() {
            let sequence: Int64 = row[0]
            func corrupt(_ problem: String) -> CorruptOutbox { CorruptOutbox(problem: "event \(sequence): \(problem)") }
            guard let type = RecordEventType(rawValue: row[2]) else { throw corrupt("unknown type") }
            let handlers: String = row[5]
            if handlerSets[handlers] == nil {
                guard case .array(let targets) = try JSONValue.parse(handlers) else { throw corrupt("handlers are not an array") }
                handlerSets[handlers] = (try intern(handlers, .handlerSet), targets.count)
            }
            let (pending, detached): (Int64, Int64) = (row[6], row[7])
            guard let created = Timestamp.milliseconds(row[8]) else { throw corrupt("created is not a timestamp") }
            let finished = (row[9] as String?).flatMap(Timestamp.milliseconds)
            // The timings of the successes the row holds, from `{"n": [started, ms], …}`: one for
            // each, in order (a start that is no timestamp, or a timing that is missing, cannot be
            // kept: the time the success was recorded stands for it).
            let positions = (0..<min(handlerSets[handlers]!.count, OutboxTables.eventRowTargets))
                .filter { (pending | detached) & OutboxTables.bit($0) == 0 }
            var succeeded = JSONObject()
            if let text = row[10] as String?, case .object(let object) = try JSONValue.parse(text) { succeeded = object }
            let timings = positions.isEmpty ? nil : SuccessTimings(positions.map { position in
                var entry = SuccessTimings.Entry(started: finished ?? created, microseconds: 0)
                if case .array(let timing)? = succeeded["\(position)"], timing.count == 2 {
                    if case .string(let started) = timing[0], let milliseconds = Timestamp.milliseconds(started) {
                        entry.started = milliseconds
                    }
                    switch timing[1] {
                    case .int(let milliseconds): entry.microseconds = SuccessTimings.microseconds(Double(milliseconds))
                    case .double(let milliseconds): entry.microseconds = SuccessTimings.microseconds(milliseconds)
                    default: break
                    }
                }
                return entry
            }).encoded(created: created)
            let (id, timestamp, data): (String, String, String?) = (row[1], row[11], row[13])
            let idParts = EventID.parts(id)
            if let prefix = idParts?.prefix, prefixes[prefix] == nil { prefixes[prefix] = try intern(prefix, .idPrefix) }
            // While the event has no copy of its data, its record row is that version, and names it.
            let record = data == nil && type != .deleted
                ? try Int64.fetchOne(db.cachedStatement(sql: "SELECT rowid FROM records WHERE collection = ? AND id = ? AND event = ?"),
                                     arguments: [row[3], row[4], sequence])
                : nil
            try insert.execute(arguments: [
                sequence, idParts.map { prefixes[$0.prefix]! }, idParts.map { $0.counter.databaseValue } ?? id.databaseValue,
                OutboxTables.typeCode(type), record, handlerSets[handlers]!.id, pending, detached, created,
                Timestamp.milliseconds(timestamp).map { ($0 - created).databaseValue } ?? timestamp.databaseValue,
                finished.map { $0 - created }, timings.map { Data($0) }, row[12], data, row[14],
            ])
        }
    }

    /// v3's `keepEventData`, which found the event by its collection and record id.
    private static let keepEventDataOfV3 = """
        UPDATE hook_events SET data = \(recordJSON("OLD"))
        WHERE sequence = OLD.event AND record_id = OLD.id AND collection = OLD.collection AND data IS NULL;
        """

    /// Copies the version of a record that is about to change (`OLD`) into the event that refers
    /// to it, if that event has no copy yet.
    private static let keepEventData = """
        UPDATE hook_events SET data = \(recordJSON("OLD"))
        WHERE sequence = OLD.event AND record = OLD.rowid AND data IS NULL;
        """

    /// SQL for `Record.json` as text, of the `records` row named `row`: the system fields, then
    /// the stored fields' members spliced in (stored fields never hold a system field name).
    /// The triggers hold a copy of it: changing it takes a migration that recreates them.
    static func recordJSON(_ row: String) -> String {
        """
        '{"id":' || json_quote(\(row).id) || ',"collection":' || json_quote(\(row).collection) \
        || ',"created":' || json_quote(\(row).created) || ',"updated":' || json_quote(\(row).updated) \
        || CASE WHEN length(\(row).data) <= 2 THEN '}' ELSE ',' || substr(\(row).data, 2) END
        """
    }
}

/// SQL text of the hot paths. Kept as constants so GRDB's statement cache (keyed by the text)
/// compiles each one once per connection.
enum SQL {
    static let insertCollection = "INSERT INTO collections (name, created) VALUES (?, ?)"
    static let allCollections = "SELECT name, created FROM collections ORDER BY name"
    static let collectionNames = "SELECT name FROM collections"
    static let collectionExists = "SELECT 1 FROM collections WHERE name = ?"
    static let deleteCollection = "DELETE FROM collections WHERE name = ?"
    static let deleteCollectionRecords = "DELETE FROM records WHERE collection = ?"

    static let insertRecord = """
        INSERT INTO records (collection, id, created, updated, version, data, event) VALUES (?, ?, ?, ?, ?, ?, ?)
        """
    /// Columns in the order `RecordStore.decodeRecord` reads them.
    static let selectRecord = """
        SELECT id, created, updated, version, data FROM records WHERE collection = ? AND id = ?
        """
    /// `selectRecord`'s columns, then the rowid (which events refer to).
    static let selectRecordForWrite = """
        SELECT id, created, updated, version, data, rowid FROM records WHERE collection = ? AND id = ?
        """
    static let recordRowID = "SELECT rowid FROM records WHERE collection = ? AND id = ?"
    static let recordVersion = "SELECT version FROM records WHERE collection = ? AND id = ?"
    static let replaceRecord = """
        UPDATE records SET data = ?, updated = ?, version = version + 1, event = ?
        WHERE collection = ? AND id = ? AND version = ?
        RETURNING created, version
        """
    static let deleteRecord = """
        DELETE FROM records WHERE collection = ? AND id = ? AND version = ?
        RETURNING id, created, updated, version, data
        """
    /// For a write that already checked the version in the same transaction.
    static let deleteRecordUnconditionally = "DELETE FROM records WHERE collection = ? AND id = ?"
    static let countRecords = "SELECT record_count FROM collections WHERE name = ?"

    /// `SELECT … LIMIT ? OFFSET ?` in the given order, same columns as `selectRecord`; with
    /// `filters`, one `json_extract` condition each (bound after the collection).
    static func listRecords(_ sort: RecordSort, filters: [RecordFilter] = []) -> String {
        if filters.isEmpty {
            switch sort {
            case .created(true): return listCreatedAscending
            case .created(false): return listCreatedDescending
            case .updated(true): return listUpdatedAscending
            case .updated(false): return listUpdatedDescending
            case .id(true): return listIDAscending
            case .id(false): return listIDDescending
            }
        }
        return "SELECT id, created, updated, version, data FROM records WHERE collection = ?"
            + conditions(filters) + " ORDER BY " + order(sort) + " LIMIT ? OFFSET ?"
    }

    /// The number of records of a collection that pass `filters` (bound after the collection).
    static func countFiltered(_ filters: [RecordFilter]) -> String {
        "SELECT count(*) FROM records WHERE collection = ?" + conditions(filters)
    }

    private static func conditions(_ filters: [RecordFilter]) -> String {
        filters.map { $0.value == .null ? " AND json_extract(data, ?) IS NULL" : " AND json_extract(data, ?) = ?" }.joined()
    }

    private static func order(_ sort: RecordSort) -> String {
        switch sort {
        case .created(true): "created ASC, rowid ASC"
        case .created(false): "created DESC, rowid DESC"
        case .updated(true): "updated ASC, rowid ASC"
        case .updated(false): "updated DESC, rowid DESC"
        case .id(true): "id ASC"
        case .id(false): "id DESC"
        }
    }

    private static let listPrefix = "SELECT id, created, updated, version, data FROM records WHERE collection = ? ORDER BY "
    private static let listCreatedAscending = listPrefix + order(.created(ascending: true)) + " LIMIT ? OFFSET ?"
    private static let listCreatedDescending = listPrefix + order(.created(ascending: false)) + " LIMIT ? OFFSET ?"
    private static let listUpdatedAscending = listPrefix + order(.updated(ascending: true)) + " LIMIT ? OFFSET ?"
    private static let listUpdatedDescending = listPrefix + order(.updated(ascending: false)) + " LIMIT ? OFFSET ?"
    private static let listIDAscending = listPrefix + order(.id(ascending: true)) + " LIMIT ? OFFSET ?"
    private static let listIDDescending = listPrefix + order(.id(ascending: false)) + " LIMIT ? OFFSET ?"
}
