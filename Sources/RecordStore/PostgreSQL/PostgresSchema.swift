import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL layout and its migrations.
///
/// A plain relational layout: the SQLite engine's lean-row tricks (deliveries as bits of their
/// event's row, events referring to their record) pay for SQLite's single writer and are left
/// out. Records keep their fields in `json` (the text as written, so key order is kept; filters
/// compare fields as `jsonb`); an event keeps its record's data itself; every
/// delivery is a row from the write on, claimed by one node at a time (`claimed_by`, valid while
/// that node's row in `delivery_leases` is; see `PostgresClaims`).
///
/// Timestamps are text as `Timestamp` writes them (so they sort as text, compared with
/// `COLLATE "C"`, byte by byte, as SQLite does); `next_attempt_at` and a lease's `lease_until` are
/// milliseconds since 1970.
enum PostgresSchema {
    /// The advisory lock key migrations run under (any 64-bit number; "moonbase" in ASCII), so
    /// several nodes starting at once migrate one after the other and the later ones find
    /// nothing to do.
    static let migrationLock: Int64 = 0x6D6F_6F6E_6261_7365

    /// The migrations in order: (version, name, SQL). Append new ones, never edit a shipped one.
    static let migrations: [(version: Int64, name: String, sql: String)] = [
        (1, "collections, records and the outbox", """
            CREATE TABLE collections (
                name    text PRIMARY KEY,
                created text NOT NULL
            );

            CREATE TABLE records (
                collection text NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
                id         text NOT NULL,
                -- Insertion order: the tie-break that keeps listings stable when timestamps are
                -- equal (they have millisecond resolution), as SQLite's rowid does.
                position   bigint GENERATED ALWAYS AS IDENTITY,
                created    text NOT NULL,
                updated    text NOT NULL,
                version    bigint NOT NULL,
                -- The user's fields (no system field), as written: `json` keeps the text, so objects
                -- keep their key order as on SQLite (`jsonb` would reorder keys).
                data       json NOT NULL,
                PRIMARY KEY (collection, id)
            );
            CREATE INDEX records_by_created ON records (collection, created COLLATE "C", position);
            CREATE INDEX records_by_updated ON records (collection, updated COLLATE "C", position);
            CREATE INDEX records_by_id ON records (collection, id COLLATE "C");

            -- Commit order of events: one writer per node hands them out inside its transaction.
            CREATE SEQUENCE hook_event_sequence;

            -- One row per committed write that has after-handlers, in the write's transaction.
            -- No foreign key to the record: an event outlives its record and collection.
            CREATE TABLE hook_events (
                sequence   bigint PRIMARY KEY,
                id         text NOT NULL,
                type       text NOT NULL,    -- record.created | record.updated | record.deleted
                collection text NOT NULL,
                record_id  text NOT NULL,
                timestamp  text NOT NULL,
                depth      bigint NOT NULL,  -- writes by handlers that led to this one
                created    text NOT NULL,    -- the deliveries' `created`
                data       json NOT NULL,    -- the record after the write (a delete: as it was)
                old_data   json              -- the record before an update or delete
            );

            -- One row per (event, handler): id = sequence * 1000 + position (`Outbox.deliveryID`).
            CREATE TABLE hook_deliveries (
                id               bigint PRIMARY KEY,
                event_sequence   bigint NOT NULL REFERENCES hook_events(sequence) ON DELETE CASCADE,
                handler          text NOT NULL,
                collection       text NOT NULL,
                record_id        text NOT NULL,
                status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
                attempts         bigint NOT NULL DEFAULT 0,
                max_attempts     bigint NOT NULL,
                next_attempt_at  bigint,          -- ms since 1970, for failed deliveries
                last_error       text,
                created          text NOT NULL,
                updated          text NOT NULL,
                redelivered      boolean NOT NULL DEFAULT false,
                -- For claiming across nodes (the next slice): the node running it, and until when.
                claimed_by       text,
                lease_until      bigint
            );
            -- What start-up (and, later, claiming) takes up.
            CREATE INDEX hook_deliveries_unfinished ON hook_deliveries (event_sequence) WHERE status IN ('pending', 'failed');
            -- The deliveries log's filters, and the stale-redelivery check of a requeue.
            CREATE INDEX hook_deliveries_by_status ON hook_deliveries (status, id);
            CREATE INDEX hook_deliveries_of_record ON hook_deliveries (collection, record_id, handler, event_sequence);

            -- Every attempt, failed or succeeded.
            CREATE TABLE hook_attempts (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                delivery_id bigint NOT NULL REFERENCES hook_deliveries(id) ON DELETE CASCADE,
                attempt     bigint NOT NULL,
                succeeded   boolean NOT NULL,
                started     text NOT NULL,
                duration_ms double precision NOT NULL,
                error       text
            );
            CREATE INDEX hook_attempts_by_delivery ON hook_attempts (delivery_id, attempt);
            """),
        (2, "cron runs", PostgresCron.migration),
        (3, "delivery claims across nodes", """
            -- A handler with `order = "collection"`: its lane is the collection, not the record.
            ALTER TABLE hook_deliveries ADD COLUMN collection_ordered boolean NOT NULL DEFAULT false;
            -- The lane checks of writes and claims look at unfinished deliveries only.
            CREATE INDEX hook_deliveries_unfinished_lanes ON hook_deliveries (handler, collection, record_id)
                WHERE status IN ('pending', 'failed');
            -- A node renewing its leases, or taking up its own claims at start.
            CREATE INDEX hook_deliveries_claimed ON hook_deliveries (claimed_by, event_sequence)
                WHERE status IN ('pending', 'failed');
            """),
        (4, "nodes", PostgresNodes.migration),
        (5, "one lease per node", """
            -- A node's claims last as long as its lease: renewing is one row, however many it holds.
            CREATE TABLE delivery_leases (
                node        text PRIMARY KEY,
                lease_until bigint NOT NULL      -- ms since 1970, by the database's clock
            );
            ALTER TABLE hook_deliveries DROP COLUMN lease_until;
            -- What a claim pass takes first: unfinished deliveries nobody holds.
            CREATE INDEX hook_deliveries_unclaimed ON hook_deliveries (id)
                WHERE status IN ('pending', 'failed') AND claimed_by IS NULL;
            """),
        (6, "first successes without an attempt row", """
            -- A first attempt that succeeded: kept here rather than as a row of hook_attempts.
            ALTER TABLE hook_deliveries ADD COLUMN first_success_started text;
            ALTER TABLE hook_deliveries ADD COLUMN first_success_ms double precision;
            """),
        (7, "fewer index entries per delivery", """
            -- An event's deliveries are the ids sequence * 1000 to sequence * 1000 + 999
            -- (`Outbox.deliveryID`): the purge deletes them by that range of the primary key. The
            -- foreign key, checked at every delivery inserted, goes, and with it its cascade,
            -- which had no index to find an event's deliveries by.
            ALTER TABLE hook_deliveries DROP CONSTRAINT hook_deliveries_event_sequence_fkey;
            -- Nothing reads unfinished deliveries by event alone: a node reads its own through
            -- hook_deliveries_claimed.
            DROP INDEX hook_deliveries_unfinished;
            -- The deliveries log by status. Succeeded ones, nearly all, are found by id; the
            -- others are indexed, so a delivery that succeeds leaves this index rather than
            -- entering it again.
            DROP INDEX hook_deliveries_by_status;
            CREATE INDEX hook_deliveries_unsettled ON hook_deliveries (status, id) WHERE status IN ('pending', 'failed', 'dead');
            -- The stale-redelivery check of a requeue finds a record's later events here: one
            -- entry per event instead of one per delivery.
            DROP INDEX hook_deliveries_of_record;
            CREATE INDEX hook_events_of_record ON hook_events (collection, record_id, sequence);
            """),
    ]

    /// The statements of a migration's SQL: each ends with `;` at the end of a line.
    static func statements(of sql: String) -> [String] {
        sql.components(separatedBy: ";\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }.filter { !$0.isEmpty }
    }

    /// Brings the database's layout up to date under `migrationLock`, each migration in a
    /// transaction of its own with its row in `moonbase_migrations`.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
        do {
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS moonbase_migrations (
                    version bigint PRIMARY KEY,
                    name    text NOT NULL,
                    applied timestamptz NOT NULL DEFAULT now()
                )
                """, logger: logger)
            var applied: Set<Int64> = []
            for try await version in try await connection.query("SELECT version FROM moonbase_migrations", logger: logger).decode(Int64.self) {
                applied.insert(version)
            }
            for migration in migrations where !applied.contains(migration.version) {
                try await connection.withTransaction(logger: logger) { connection in
                    // One statement at a time: the extended protocol takes no more.
                    for statement in statements(of: migration.sql) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO moonbase_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                }
                logger.info("database migrated", metadata: ["version": .stringConvertible(migration.version), "name": .string(migration.name)])
            }
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
            throw error
        }
        _ = try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
    }
}
