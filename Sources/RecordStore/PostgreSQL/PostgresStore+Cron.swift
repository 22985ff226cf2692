import Logging
import MoonbaseModel
import PostgresNIO

// The cron side of `PostgresStore` (see `CronStore`), the same tables and rules as SQLite's
// (`SQLiteStore+Cron`): a slot is claimed by inserting (name, slot) under a unique key, which
// every node's insert races for in its own transaction. Writes go through the writer, reads
// through the pool.

extension PostgresStore: CronStore {
    public func startCrons(_ crons: [(name: String, schedule: String)], now: Int64) async throws(StoreError) -> [String: CronHistory] {
        let (names, schedules) = (crons.map(\.name), crons.map(\.schedule))
        let logger = logger
        try await writer.perform { connection in
            _ = try await connection.query("""
                INSERT INTO cron_histories (name, schedule, since)
                SELECT n, s, \(now) FROM unnest(\(names)::text[], \(schedules)::text[]) AS c(n, s)
                ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, since = excluded.since
                WHERE cron_histories.schedule <> excluded.schedule
                """, logger: logger)
        }
        return try await cronHistories()
    }

    public func cronHistories() async throws(StoreError) -> [String: CronHistory] {
        try await read { client, logger in
            var histories: [String: CronHistory] = [:]
            let rows = try await client.query("SELECT name, schedule, since, last_slot, last_run, last_error FROM cron_histories", logger: logger)
            for try await (name, schedule, since, lastSlot, lastRun, lastError) in rows.decode((String, String, Int64, Int64?, String?, String?).self) {
                histories[name] = CronHistory(schedule: schedule, since: since, lastSlot: lastSlot, lastRun: lastRun, lastError: lastError)
            }
            return histories
        }
    }

    public func claimCronRun(_ claim: CronClaim) async throws(StoreError) -> CronRun? {
        let logger = logger
        let maxAttempts = Int64(max(claim.maxAttempts, 1))
        return try await writer.perform { connection -> CronRun? in
            // A run by hand has no slot: NULLs are distinct under the unique key, so it never conflicts.
            var claimed: Int64?
            for try await id in try await connection.query("""
                INSERT INTO cron_runs (name, slot, event_id, scheduled_at, status, max_attempts, created, updated)
                VALUES (\(claim.name), \(claim.slot), \(claim.eventID), \(claim.scheduledAt), 'pending', \(maxAttempts), \(claim.created), \(claim.created))
                ON CONFLICT (name, slot) DO NOTHING RETURNING id
                """, logger: logger).decode(Int64.self) {
                claimed = id
            }
            guard let id = claimed else { return nil }
            try await connection.query("""
                UPDATE cron_histories SET last_slot = CASE WHEN \(claim.slot)::bigint IS NULL THEN last_slot
                    ELSE greatest(coalesce(last_slot, \(claim.slot)::bigint), \(claim.slot)::bigint) END, last_run = \(claim.created)
                WHERE name = \(claim.name)
                """, logger: logger)
            return CronRun(id: id, name: claim.name, slot: claim.slot, eventID: claim.eventID, scheduledAt: claim.scheduledAt,
                           status: .pending, attempts: 0, maxAttempts: Int(maxAttempts), nextAttemptAt: nil, lastError: nil,
                           created: claim.created, updated: claim.created)
        }
    }

    public func recordCronAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError) {
        guard !outcomes.isEmpty else { return }
        let now = Timestamp.now()
        let logger = logger
        try await writer.perform { connection in
            for outcome in outcomes {
                var recorded = false
                for try await _ in try await connection.query("""
                    UPDATE cron_runs SET status = \(outcome.status.rawValue), attempts = \(Int64(outcome.attempt)),
                        next_attempt_at = \(outcome.nextAttemptAt), last_error = \(outcome.error), updated = \(now)
                    WHERE id = \(outcome.deliveryID) RETURNING id
                    """, logger: logger).decode(Int64.self) {
                    recorded = true
                }
                guard recorded else { continue } // purged meanwhile
                try await connection.query("""
                    INSERT INTO cron_attempts (run_id, attempt, succeeded, started, duration_ms, error)
                    VALUES (\(outcome.deliveryID), \(Int64(outcome.attempt)), \(outcome.error == nil), \(outcome.started),
                            \(outcome.durationMilliseconds), \(outcome.error))
                    ON CONFLICT (run_id, attempt) DO UPDATE SET succeeded = excluded.succeeded, started = excluded.started,
                        duration_ms = excluded.duration_ms, error = excluded.error
                    """, logger: logger)
                try await connection.query("""
                    UPDATE cron_histories SET last_error = \(outcome.error) WHERE name = (SELECT name FROM cron_runs WHERE id = \(outcome.deliveryID))
                    """, logger: logger)
            }
        }
    }

    public func unfinishedCronRuns() async throws(StoreError) -> [CronRun] {
        try await read { client, logger in
            try await PostgresCron.runs(client.query("""
                SELECT \(unescaped: PostgresCron.runColumns) FROM cron_runs WHERE status IN ('pending', 'failed') ORDER BY id
                """, logger: logger))
        }
    }

    public func cronRuns(_ filter: DeliveryFilter) async throws(StoreError) -> [CronRun] {
        if filter.collection != nil || filter.status == .running { return [] }
        let limit = Int64(min(max(filter.limit, 1), 1000))
        return try await read { client, logger in
            try await PostgresCron.runs(client.query("""
                SELECT \(unescaped: PostgresCron.runColumns) FROM cron_runs
                WHERE (\(filter.status?.rawValue)::text IS NULL OR status = \(filter.status?.rawValue))
                  AND (\(filter.handler)::text IS NULL OR name = \(filter.handler))
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger))
        }
    }

    public func cronRun(id: Int64) async throws(StoreError) -> CronRun? {
        try await read { client, logger in
            try await PostgresCron.runs(client.query("SELECT \(unescaped: PostgresCron.runColumns) FROM cron_runs WHERE id = \(id)", logger: logger)).first
        }
    }

    public func cronAttempts(runID: Int64) async throws(StoreError) -> [DeliveryAttempt] {
        try await read { client, logger in
            var attempts: [DeliveryAttempt] = []
            let rows = try await client.query("""
                SELECT r.event_id, r.name, a.attempt, a.succeeded, a.started, a.duration_ms, a.error
                FROM cron_attempts a JOIN cron_runs r ON r.id = a.run_id WHERE a.run_id = \(runID) ORDER BY a.attempt
                """, logger: logger)
            for try await (eventID, name, attempt, succeeded, started, duration, error) in rows.decode(
                (String, String, Int64, Bool, String, Double, String?).self) {
                attempts.append(DeliveryAttempt(deliveryID: runID, eventID: eventID, handler: name, attempt: Int(attempt), succeeded: succeeded,
                                                started: started, durationMilliseconds: duration, error: error))
            }
            return attempts
        }
    }

    public func requeueCronRun(id: Int64) async throws(StoreError) -> CronRequeue {
        let now = Timestamp.now()
        let logger = logger
        return try await writer.perform { connection -> CronRequeue in
            let found = try await PostgresCron.runs(connection.query("""
                SELECT \(unescaped: PostgresCron.runColumns) FROM cron_runs WHERE id = \(id) FOR UPDATE
                """, logger: logger)).first
            guard var run = found else { return .notFound }
            guard run.status == .failed || run.status == .dead else { return .notRetryable(run.status) }
            run.status = .pending
            run.maxAttempts = max(run.maxAttempts, run.attempts + 1)
            run.nextAttemptAt = nil
            run.updated = now
            try await connection.query("""
                UPDATE cron_runs SET status = 'pending', max_attempts = \(Int64(run.maxAttempts)), next_attempt_at = NULL, updated = \(now)
                WHERE id = \(id)
                """, logger: logger)
            return .requeued(run)
        }
    }

    public func purgeSucceededCronRuns(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        let logger = logger
        return try await writer.perform { connection in
            var purged = 0
            // Attempts go with their run (ON DELETE CASCADE).
            for try await _ in try await connection.query("""
                DELETE FROM cron_runs WHERE id IN (
                    SELECT id FROM cron_runs WHERE status = 'succeeded' AND updated < \(cutoff) ORDER BY id LIMIT \(Int64(batchSize)))
                RETURNING id
                """, logger: logger).decode(Int64.self) {
                purged += 1
            }
            return purged
        }
    }
}

/// The cron tables on PostgreSQL and how their rows are read.
enum PostgresCron {
    /// Migration 2.
    static let migration = """
        -- What is known of each cron: when its history started (a first start, or a changed
        -- schedule, has nothing to catch up), the last slot claimed, the last run and error.
        CREATE TABLE cron_histories (
            name       text PRIMARY KEY,
            schedule   text NOT NULL,
            since      bigint NOT NULL,
            last_slot  bigint,
            last_run   text,
            last_error text
        );

        -- One row per claimed run: (name, slot) is unique, so a slot runs once whichever node
        -- claims it; a run by hand has no slot.
        CREATE TABLE cron_runs (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name            text NOT NULL,
            slot            bigint,
            event_id        text NOT NULL,
            scheduled_at    text NOT NULL,
            status          text NOT NULL,
            attempts        bigint NOT NULL DEFAULT 0,
            max_attempts    bigint NOT NULL,
            next_attempt_at bigint,
            last_error      text,
            created         text NOT NULL,
            updated         text NOT NULL,
            UNIQUE (name, slot)
        );
        CREATE INDEX cron_runs_unfinished ON cron_runs (id) WHERE status IN ('pending', 'failed');
        CREATE INDEX cron_runs_by_name ON cron_runs (name, id);

        CREATE TABLE cron_attempts (
            run_id      bigint NOT NULL REFERENCES cron_runs(id) ON DELETE CASCADE,
            attempt     bigint NOT NULL,
            succeeded   boolean NOT NULL,
            started     text NOT NULL,
            duration_ms double precision NOT NULL,
            error       text,
            PRIMARY KEY (run_id, attempt)
        );
        """

    static let runColumns = "id, name, slot, event_id, scheduled_at, status, attempts, max_attempts, next_attempt_at, last_error, created, updated"

    /// The rows of a query on `runColumns`; a status no version wrote is left out.
    static func runs(_ rows: PostgresRowSequence) async throws -> [CronRun] {
        var runs: [CronRun] = []
        for try await row in rows {
            let columns = row.makeRandomAccess()
            guard let status = DeliveryStatus(rawValue: try columns[5].decode(String.self)) else { continue }
            runs.append(CronRun(
                id: try columns[0].decode(Int64.self), name: try columns[1].decode(String.self), slot: try columns[2].decode(Int64?.self),
                eventID: try columns[3].decode(String.self), scheduledAt: try columns[4].decode(String.self), status: status,
                attempts: Int(try columns[6].decode(Int64.self)), maxAttempts: Int(try columns[7].decode(Int64.self)),
                nextAttemptAt: try columns[8].decode(Int64?.self), lastError: try columns[9].decode(String?.self),
                created: try columns[10].decode(String.self), updated: try columns[11].decode(String.self)))
        }
        return runs
    }
}
