import GRDB

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
                    \(keepEventData)
                END;
                CREATE TRIGGER records_event_data_on_delete BEFORE DELETE ON records WHEN OLD.event IS NOT NULL BEGIN
                    \(keepEventData)
                END;
                """)
        }
        migrator.registerMigration("v4: forced redeliveries") { db in
            // A delivery sent again by hand although a later one of its record to its handler had
            // succeeded: its handler is told (`event.redelivered`), even after a restart.
            try db.execute(sql: "ALTER TABLE hook_deliveries ADD COLUMN redelivered INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    /// Copies the version of a record that is about to change (`OLD`) into the event that refers
    /// to it, if that event has no copy yet.
    private static let keepEventData = """
        UPDATE hook_events SET data = \(recordJSON("OLD"))
        WHERE sequence = OLD.event AND record_id = OLD.id AND collection = OLD.collection AND data IS NULL;
        """

    /// SQL for `Record.json` as text, of the `records` row named `row`: the system fields, then
    /// the stored fields' members spliced in (stored fields never hold a system field name).
    /// The v3 triggers hold a copy of it: changing it takes a migration that recreates them.
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
