import GRDB
import MoonbaseModel

// The cron side of `SQLiteStore` (see `CronStore`). Writes go through the `WriteBatcher` like
// every other write; the claim's uniqueness is the `UNIQUE (name, slot)` of `cron_runs`.

extension SQLiteStore: CronStore {
    public func startCrons(_ crons: [(name: String, schedule: String)], now: Int64) async throws(StoreError) -> [String: CronHistory] {
        let crons = crons.map { ($0.name, $0.schedule) }
        try await batcher.perform { db in
            for (name, schedule) in crons {
                try db.cachedStatement(sql: CronSQL.startCron).execute(arguments: [name, schedule, now])
            }
        }
        return try await cronHistories()
    }

    public func cronHistories() async throws(StoreError) -> [String: CronHistory] {
        try mappingErrors {
            try writer.read { db in
                var histories: [String: CronHistory] = [:]
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: CronSQL.histories))
                while let row = try cursor.next() {
                    histories[try row.decode(atIndex: 0)] = CronHistory(
                        schedule: try row.decode(atIndex: 1), since: try row.decode(atIndex: 2), lastSlot: try row.decode(atIndex: 3),
                        lastRun: try row.decode(atIndex: 4), lastError: try row.decode(atIndex: 5))
                }
                return histories
            }
        }
    }

    public func claimCronRun(_ claim: CronClaim) async throws(StoreError) -> CronRun? {
        try await batcher.perform { db -> CronRun? in
            let maxAttempts = max(claim.maxAttempts, 1)
            try db.cachedStatement(sql: CronSQL.claim).execute(arguments: [
                claim.name, claim.slot, claim.eventID, claim.scheduledAt, maxAttempts, claim.created, claim.created,
            ])
            guard db.changesCount == 1 else { return nil } // the slot was claimed before
            let id = db.lastInsertedRowID
            try db.cachedStatement(sql: CronSQL.claimed).execute(arguments: [claim.slot, claim.slot, claim.slot, claim.created, claim.name])
            return CronRun(id: id, name: claim.name, slot: claim.slot, eventID: claim.eventID, scheduledAt: claim.scheduledAt,
                           status: .pending, attempts: 0, maxAttempts: maxAttempts, nextAttemptAt: nil, lastError: nil,
                           created: claim.created, updated: claim.created)
        }
    }

    public func recordCronAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError) {
        guard !outcomes.isEmpty else { return }
        let now = Timestamp.now()
        try await batcher.perform { db in
            for outcome in outcomes {
                try db.cachedStatement(sql: CronSQL.recordAttempt).execute(arguments: [
                    outcome.status.rawValue, outcome.attempt, outcome.nextAttemptAt, outcome.error, now, outcome.deliveryID,
                ])
                guard db.changesCount == 1 else { continue } // purged meanwhile
                try db.cachedStatement(sql: CronSQL.insertAttempt).execute(arguments: [
                    outcome.deliveryID, outcome.attempt, outcome.error == nil, outcome.started, outcome.durationMilliseconds, outcome.error,
                ])
                try db.cachedStatement(sql: CronSQL.lastError).execute(arguments: [outcome.error, outcome.deliveryID])
            }
        }
    }

    public func unfinishedCronRuns() async throws(StoreError) -> [CronRun] {
        try readCronRuns(CronSQL.runs(where: "status IN ('pending', 'failed')", order: "ASC"), [])
    }

    public func cronRuns(_ filter: DeliveryFilter) async throws(StoreError) -> [CronRun] {
        if filter.collection != nil || filter.status == .running { return [] }
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let status = filter.status {
            conditions.append("status = ?")
            arguments += [status.rawValue]
        }
        if let name = filter.handler {
            conditions.append("name = ?")
            arguments += [name]
        }
        arguments += [min(max(filter.limit, 1), 1000)]
        return try readCronRuns(CronSQL.runs(where: conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), order: "DESC") + " LIMIT ?",
                                arguments)
    }

    public func cronRun(id: Int64) async throws(StoreError) -> CronRun? {
        try readCronRuns(CronSQL.runs(where: "id = ?", order: "ASC"), [id]).first
    }

    public func cronAttempts(runID: Int64) async throws(StoreError) -> [DeliveryAttempt] {
        try mappingErrors {
            try writer.read { db in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: CronSQL.attempts), arguments: [runID])
                var attempts: [DeliveryAttempt] = []
                while let row = try cursor.next() {
                    attempts.append(DeliveryAttempt(
                        deliveryID: runID, eventID: try row.decode(atIndex: 0), handler: try row.decode(atIndex: 1),
                        attempt: try row.decode(atIndex: 2), succeeded: try row.decode(atIndex: 3), started: try row.decode(atIndex: 4),
                        durationMilliseconds: try row.decode(atIndex: 5), error: try row.decode(atIndex: 6)))
                }
                return attempts
            }
        }
    }

    public func requeueCronRun(id: Int64) async throws(StoreError) -> CronRequeue {
        let now = Timestamp.now()
        return try await batcher.perform { db -> CronRequeue in
            guard let run = try CronSQL.run(Row.fetchOne(db.cachedStatement(sql: CronSQL.runs(where: "id = ?", order: "ASC")), arguments: [id])) else {
                return .notFound
            }
            guard run.status == .failed || run.status == .dead else { return .notRetryable(run.status) }
            try db.cachedStatement(sql: CronSQL.requeue).execute(arguments: [now, id])
            var requeued = run
            requeued.status = .pending
            requeued.maxAttempts = max(run.maxAttempts, run.attempts + 1)
            requeued.nextAttemptAt = nil
            requeued.updated = now
            return .requeued(requeued)
        }
    }

    public func purgeSucceededCronRuns(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        return try await batcher.perform { db in
            let ids = try Int64.fetchAll(db.cachedStatement(sql: CronSQL.purgeable), arguments: [cutoff, batchSize])
            for id in ids {
                try db.cachedStatement(sql: CronSQL.deleteAttempts).execute(arguments: [id])
                try db.cachedStatement(sql: CronSQL.deleteRun).execute(arguments: [id])
            }
            return ids.count
        }
    }

    private func readCronRuns(_ sql: String, _ arguments: StatementArguments) throws(StoreError) -> [CronRun] {
        try mappingErrors {
            try writer.read { db in
                try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).compactMap(CronSQL.run)
            }
        }
    }
}

/// The cron tables and their statements.
enum CronSQL {
    /// The `v6: cron runs` migration.
    static func createTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE cron_histories (
                name TEXT PRIMARY KEY,
                schedule TEXT NOT NULL,
                since INTEGER NOT NULL,
                last_slot INTEGER,
                last_run TEXT,
                last_error TEXT
            );
            CREATE TABLE cron_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                slot INTEGER,
                event_id TEXT NOT NULL,
                scheduled_at TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL,
                next_attempt_at INTEGER,
                last_error TEXT,
                created TEXT NOT NULL,
                updated TEXT NOT NULL,
                UNIQUE (name, slot)
            );
            CREATE INDEX cron_runs_unfinished ON cron_runs (id) WHERE status IN ('pending', 'failed');
            CREATE INDEX cron_runs_by_name ON cron_runs (name, id);
            CREATE TABLE cron_attempts (
                run_id INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                succeeded INTEGER NOT NULL,
                started TEXT NOT NULL,
                duration_ms REAL NOT NULL,
                error TEXT,
                PRIMARY KEY (run_id, attempt)
            );
            """)
    }

    /// A new name, or a known name with another schedule, starts its history now.
    static let startCron = """
        INSERT INTO cron_histories (name, schedule, since) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, since = excluded.since
        WHERE cron_histories.schedule != excluded.schedule
        """
    static let histories = "SELECT name, schedule, since, last_slot, last_run, last_error FROM cron_histories"
    /// A run by hand has no slot: NULLs are never equal, so it never conflicts.
    static let claim = """
        INSERT INTO cron_runs (name, slot, event_id, scheduled_at, status, max_attempts, created, updated)
        VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (name, slot) DO NOTHING
        """
    static let claimed = """
        UPDATE cron_histories SET last_slot = CASE WHEN ? IS NULL THEN last_slot ELSE max(coalesce(last_slot, ?), ?) END,
        last_run = ? WHERE name = ?
        """
    static let recordAttempt = """
        UPDATE cron_runs SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated = ? WHERE id = ?
        """
    static let insertAttempt = """
        INSERT OR REPLACE INTO cron_attempts (run_id, attempt, succeeded, started, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?)
        """
    static let lastError = "UPDATE cron_histories SET last_error = ? WHERE name = (SELECT name FROM cron_runs WHERE id = ?)"
    static let attempts = """
        SELECT r.event_id, r.name, a.attempt, a.succeeded, a.started, a.duration_ms, a.error
        FROM cron_attempts a JOIN cron_runs r ON r.id = a.run_id WHERE a.run_id = ? ORDER BY a.attempt
        """
    static let requeue = """
        UPDATE cron_runs SET status = 'pending', max_attempts = max(max_attempts, attempts + 1), next_attempt_at = NULL, updated = ?
        WHERE id = ?
        """
    static let purgeable = "SELECT id FROM cron_runs WHERE status = 'succeeded' AND updated < ? ORDER BY id LIMIT ?"
    static let deleteAttempts = "DELETE FROM cron_attempts WHERE run_id = ?"
    static let deleteRun = "DELETE FROM cron_runs WHERE id = ?"

    static func runs(where condition: String, order: String) -> String {
        """
        SELECT id, name, slot, event_id, scheduled_at, status, attempts, max_attempts, next_attempt_at, last_error, created, updated
        FROM cron_runs WHERE \(condition) ORDER BY id \(order)
        """
    }

    /// A row of `runs`; nil for a status no version wrote.
    static func run(_ row: Row?) -> CronRun? {
        guard let row, let status = DeliveryStatus(rawValue: row[5]) else { return nil }
        return CronRun(id: row[0], name: row[1], slot: row[2], eventID: row[3], scheduledAt: row[4], status: status, attempts: row[6],
                       maxAttempts: row[7], nextAttemptAt: row[8], lastError: row[9], created: row[10], updated: row[11])
    }
}
