import Logging
import MoonbaseModel
import PostgresNIO

// The outbox side of `PostgresStore`: writes go through the writer (sharing its transactions),
// reads through the pool, the rows read back by `PostgresOutbox`.

extension PostgresStore {
    // MARK: - Delivery state

    /// Records finished attempts in one transaction (see `RecordStore.recordAttempts`). As on
    /// SQLite, a first attempt counts only while its delivery was never tried, a later one only
    /// once it was; unknown ids change nothing. Every attempt gets a row in `hook_attempts`.
    ///
    /// One statement records them all (one more for each repeat of a delivery in `outcomes`, so
    /// that its attempts apply in order, as on SQLite). A first attempt that succeeds, by far the
    /// most common, gets no attempt row: its start and duration stay on the delivery's row
    /// (`first_success_started`, `first_success_ms`), which it updates anyway, and `attempts`
    /// lists it from there. With ten handlers that is ten rows and twenty index entries fewer per
    /// write.
    public func recordAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError) {
        var rounds: [[AttemptOutcome]] = []
        var seen: [Int64: Int] = [:]
        // By id: transactions that change several deliveries lock them in one order.
        for outcome in outcomes.sorted(by: { ($0.deliveryID, $0.attempt) < ($1.deliveryID, $1.attempt) }) where outcome.deliveryID >= 0 {
            let round = seen[outcome.deliveryID, default: 0]
            seen[outcome.deliveryID] = round + 1
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(outcome)
        }
        guard !rounds.isEmpty else { return }
        let work = rounds
        let now = Timestamp.now()
        // On a pooled connection, not the writer's: outcomes need no place in commit order, and
        // PostgreSQL runs them beside the writer's transactions rather than between them.
        // Past the deadline the caller hears `unavailable` while the transaction may still
        // commit: either way each delivery is left pending or recorded, never half.
        try await read { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                try await Self.record(work, now: now, connection, logger)
            }
        }
    }

    /// `recordAttempts`' statements, one per round.
    private static func record(_ work: [[AttemptOutcome]], now: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        for round in work {
            // Arrays cannot hold NULL here: a flag says which next times and errors there are.
            let failed = round.map { $0.error != nil }
            let hasNext = round.map { $0.error != nil && $0.nextAttemptAt != nil }
            try await connection.query("""
                WITH outcome AS (
                    SELECT * FROM unnest(\(round.map(\.deliveryID))::bigint[], \(round.map(\.status.rawValue))::text[],
                                         \(round.map { Int64($0.attempt) })::bigint[], \(failed)::boolean[], \(hasNext)::boolean[],
                                         \(round.map { $0.nextAttemptAt ?? 0 })::bigint[], \(round.map { $0.error ?? "" })::text[],
                                         \(round.map(\.started))::text[], \(round.map(\.durationMilliseconds))::float8[])
                        AS o(id, status, attempt, failed, has_next, next_attempt_at, error, started, duration_ms)
                ), recorded AS (
                    UPDATE hook_deliveries d
                    SET status = o.status, attempts = o.attempt, updated = \(now),
                        next_attempt_at = CASE WHEN o.has_next THEN o.next_attempt_at END,
                        last_error = CASE WHEN o.failed THEN o.error END,
                        first_success_started = CASE WHEN o.attempt = 1 AND NOT o.failed THEN o.started END,
                        first_success_ms = CASE WHEN o.attempt = 1 AND NOT o.failed THEN o.duration_ms END
                    FROM outcome o
                    WHERE d.id = o.id AND CASE WHEN o.attempt = 1 THEN d.status = 'pending' AND d.attempts = 0 ELSE d.attempts > 0 END
                    RETURNING d.id, o.attempt, o.failed, o.started, o.duration_ms, o.error
                )
                INSERT INTO hook_attempts (delivery_id, attempt, succeeded, started, duration_ms, error)
                SELECT id, attempt, NOT failed, started, duration_ms, CASE WHEN failed THEN error END FROM recorded
                WHERE failed OR attempt > 1
                """, logger: logger)
        }
    }

    /// A failed or dead delivery goes back to pending (see `RecordStore.requeue`). The node that
    /// requeues it claims it (it runs it next), unless another node holds a delivery of its
    /// lane: then it is left unclaimed, and that node's claim pass takes it into the lane, so the
    /// lane still runs on one node at a time (see `DeliveryClaims.holds`).
    public func requeue(deliveryID: Int64, force: Bool) async throws(StoreError) -> Delivery {
        let (now, node) = (Timestamp.now(), node)
        let logger = logger
        return try await writer.perform { connection in
            let rows = try await connection.query("""
                SELECT status, event_sequence, handler, collection, record_id FROM hook_deliveries WHERE id = \(deliveryID) FOR UPDATE
                """, logger: logger)
            var found: (String, Int64, String, String, String)?
            for try await row in rows.decode((String, Int64, String, String, String).self) { found = row }
            guard let (statusName, sequence, handler, collection, recordID) = found else { throw StoreError.deliveryNotFound(deliveryID) }
            let status = DeliveryStatus(rawValue: statusName) ?? .pending
            guard status == .failed || status == .dead else { throw StoreError.deliveryNotRetryable(id: deliveryID, status: status) }
            // The newest later delivery of the same record to the same handler that succeeded.
            var newer: Int64?
            for try await id in try await connection.query("""
                SELECT d.id FROM hook_events e
                JOIN hook_deliveries d ON \(unescaped: PostgresOutbox.deliveriesOfEvent)
                WHERE e.collection = \(collection) AND e.record_id = \(recordID) AND e.sequence > \(sequence)
                  AND d.handler = \(handler) AND d.status = 'succeeded'
                ORDER BY e.sequence DESC, d.id LIMIT 1
                """, logger: logger).decode(Int64.self) {
                newer = id
            }
            if let newer, !force { throw StoreError.staleRedelivery(id: deliveryID, newer: newer) }
            let requeued = try await connection.query("""
                WITH requeued AS (
                    UPDATE hook_deliveries d
                    SET status = 'pending', next_attempt_at = NULL, max_attempts = greatest(max_attempts, attempts + 1),
                        updated = \(now), redelivered = \(newer != nil),
                        claimed_by = CASE WHEN NOT (\(unescaped: PostgresOutbox.laneHeldElsewhere(
                            handler: "d.handler", ordered: "d.collection_ordered", collection: "d.collection", record: "d.record_id",
                            except: "AND p.id <> d.id"))) THEN s.node END
                    FROM (SELECT \(node)::text AS node) s
                    WHERE d.id = \(deliveryID) RETURNING d.*
                )
                SELECT \(unescaped: PostgresOutbox.deliveryColumns), d.claimed_by IS NULL
                FROM requeued d JOIN hook_events e ON e.sequence = d.event_sequence
                """, logger: logger)
            var result: (delivery: Delivery, unclaimed: Bool)?
            for try await row in requeued {
                let columns = row.makeRandomAccess()
                result = (try PostgresOutbox.delivery(columns), try columns[PostgresOutbox.deliveryColumnCount].decode(Bool.self))
            }
            guard let result else { throw CorruptOutbox(problem: "delivery \(deliveryID) vanished while requeued") }
            if result.unclaimed { try await PostgresClaims.wakeNodes(connection, logger) }
            return result.delivery
        }
    }

    /// Deletes old events whose deliveries all succeeded (see `RecordStore.purgeSucceeded`); the
    /// newest event always stays, as on SQLite. Their deliveries go with them (and the
    /// deliveries' attempts by their foreign key).
    /// - Throws: `database` if `cutoff` is not a timestamp as `Timestamp` writes them.
    public func purgeSucceeded(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int {
        guard batchSize > 0 else { return 0 }
        guard Timestamp.milliseconds(cutoff) != nil else { throw .database("'\(cutoff)' is not a timestamp") }
        let logger = logger
        return try await writer.perform { connection in
            try await connection.query("""
                WITH purged AS (
                    SELECT e.sequence FROM hook_events e
                    WHERE e.sequence < (SELECT max(sequence) FROM hook_events)
                      AND NOT EXISTS (SELECT 1 FROM hook_deliveries d WHERE \(unescaped: PostgresOutbox.deliveriesOfEvent)
                                      AND (d.status <> 'succeeded' OR d.updated COLLATE "C" >= \(cutoff)))
                    ORDER BY e.sequence LIMIT \(Int64(batchSize))
                ), deliveries AS (
                    DELETE FROM hook_deliveries d USING purged e WHERE \(unescaped: PostgresOutbox.deliveriesOfEvent)
                )
                DELETE FROM hook_events WHERE sequence IN (SELECT sequence FROM purged) RETURNING sequence
                """, logger: logger).collect().count
        }
    }

    // MARK: - Reading the outbox

    /// This node's claims (see `DeliveryClaims`); the others' are theirs, and unclaimed ones are
    /// for `claim`.
    public func unfinishedDeliveries(from: Int64, events limit: Int) async throws(StoreError) -> UnfinishedDeliveries {
        let (limit, node) = (max(limit, 1), node)
        return try await read { client, logger in
            // One more than asked: the first past the limit is where to go on from.
            var sequences: [Int64] = []
            for try await sequence in try await client.query("""
                SELECT DISTINCT event_sequence FROM hook_deliveries
                WHERE status IN ('pending', 'failed') AND claimed_by = \(node) AND event_sequence >= \(from)
                ORDER BY 1 LIMIT \(Int64(limit) < Int64.max ? Int64(limit) + 1 : Int64.max)
                """, logger: logger).decode(Int64.self) {
                sequences.append(sequence)
            }
            let taken = Array(sequences.prefix(limit))
            let next = sequences.count > limit ? sequences[limit] : nil
            guard !taken.isEmpty else { return ([], next) }
            let result = try await PostgresOutbox.deliveriesWithEvents(try await client.query("""
                SELECT \(unescaped: PostgresOutbox.deliveryColumns), \(unescaped: PostgresOutbox.eventColumns)
                FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence
                WHERE d.event_sequence = ANY(\(taken)::bigint[]) AND d.status IN ('pending', 'failed') AND d.claimed_by = \(node)
                ORDER BY d.id
                """, logger: logger))
            return (result, next)
        }
    }

    public func deliveries(_ filter: DeliveryFilter) async throws(StoreError) -> [Delivery] {
        if filter.status == .running { return [] } // never stored
        let limit = Int64(min(max(filter.limit, 1), 1000))
        return try await read { client, logger in
            try await PostgresOutbox.deliveries("""
                SELECT \(unescaped: PostgresOutbox.deliveryColumns)
                FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence
                WHERE (\(filter.status?.rawValue)::text IS NULL OR d.status = \(filter.status?.rawValue))
                  AND (\(filter.handler)::text IS NULL OR d.handler = \(filter.handler))
                  AND (\(filter.collection)::text IS NULL OR d.collection = \(filter.collection))
                ORDER BY d.id DESC LIMIT \(limit)
                """, on: client, logger)
        }
    }

    public func delivery(id: Int64) async throws(StoreError) -> Delivery {
        let found = try await read { client, logger in
            try await PostgresOutbox.deliveries("""
                SELECT \(unescaped: PostgresOutbox.deliveryColumns)
                FROM hook_deliveries d JOIN hook_events e ON e.sequence = d.event_sequence WHERE d.id = \(id)
                """, on: client, logger).first
        }
        guard let found else { throw .deliveryNotFound(id) }
        return found
    }

    public func attempts(deliveryID: Int64) async throws(StoreError) -> [DeliveryAttempt] {
        let delivery = try await delivery(id: deliveryID)
        return try await read { client, logger in
            var result: [DeliveryAttempt] = []
            // A first success is kept on the delivery's row (see `recordAttempts`), the rest as rows.
            let rows = try await client.query("""
                SELECT 1::bigint, true, first_success_started, first_success_ms, NULL::text FROM hook_deliveries
                WHERE id = \(deliveryID) AND first_success_started IS NOT NULL
                UNION ALL
                (SELECT attempt, succeeded, started, duration_ms, error FROM hook_attempts WHERE delivery_id = \(deliveryID)
                 ORDER BY attempt, id)
                """, logger: logger)
            for try await (attempt, succeeded, started, duration, error) in rows.decode((Int64, Bool, String, Double, String?).self) {
                result.append(DeliveryAttempt(deliveryID: deliveryID, eventID: delivery.eventID, handler: delivery.handler, attempt: Int(attempt),
                                              succeeded: succeeded, started: started, durationMilliseconds: duration, error: error))
            }
            return result
        }
    }

    public func event(sequence: Int64) async throws(StoreError) -> OutboxEvent {
        let found = try await read { client, logger -> OutboxEvent? in
            for try await row in try await client.query("""
                SELECT \(unescaped: PostgresOutbox.eventColumns) FROM hook_events e WHERE e.sequence = \(sequence)
                """, logger: logger) {
                return try PostgresOutbox.event(row.makeRandomAccess())
            }
            return nil
        }
        guard let found else { throw .database("event \(sequence) not found") }
        return found
    }
}
