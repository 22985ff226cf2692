import Logging
import MoonbaseJSON
import MoonbaseModel
import PostgresNIO

/// A record insert waiting for `PostgresWriter`'s next transaction, with the event it stores.
struct PostgresInsert: Sendable {
    /// The record as stored (version 1).
    let record: MoonbaseModel.Record
    /// Its fields as JSON text.
    let data: String
    /// Its event, when it has after-handlers.
    let event: PendingEvent?

    init(_ record: MoonbaseModel.Record, event request: OutboxRequest?) {
        self.record = MoonbaseModel.Record(id: record.id, collection: record.collection, created: record.created,
                                           updated: record.updated, version: 1, fields: record.fields)
        data = String(decoding: record.fields.serialized(), as: UTF8.self)
        event = request.map { PendingEvent(request: $0, type: .created, collection: record.collection, recordID: record.id,
                                           timestamp: record.updated) }
    }
}

/// The inserts of a group commit, stored by one statement: the records, their events and the
/// events' deliveries (claimed for the node where their lanes allow, as `PostgresOutbox.store`
/// does). Creates are most writes; one statement for all of a group's is one round trip where
/// each would cost two, and one plan where each would need its own.
enum PostgresInserts {
    /// Stores `inserts`, whose (collection, id) pairs must differ; returns each one's outcome in
    /// their order: its result, or the refusal of an insert that stored nothing (its collection
    /// is missing or its id taken), which leaves the others be.
    static func store(_ inserts: [PostgresInsert], node: String, _ connection: PostgresConnection,
                      _ logger: Logger) async throws -> [Result<WriteResult, StoreError>] {
        let records = inserts.map(\.record)
        // The events' and the deliveries' columns, each row naming its insert by position (1-based).
        var events: (insert: [Int64], id: [String], timestamp: [String], depth: [Int64], created: [String], data: [String]) = ([], [], [], [], [], [])
        var targets: (insert: [Int64], position: [Int64], handler: [String], maxAttempts: [Int64], ordered: [Bool]) = ([], [], [], [], [])
        // A create's event data is its record with the system fields.
        var eventData: [Int: JSONObject] = [:]
        for (index, insert) in inserts.enumerated() {
            guard let event = insert.event else { continue }
            let n = Int64(index + 1)
            let data = insert.record.json
            eventData[index] = data
            events.insert.append(n)
            events.id.append(event.id)
            events.timestamp.append(event.timestamp)
            events.depth.append(Int64(event.depth))
            events.created.append(Timestamp.format(millisecondsSince1970: event.created))
            events.data.append(String(decoding: data.serialized(), as: UTF8.self))
            for (position, target) in event.targets.targets.enumerated() {
                targets.insert.append(n)
                targets.position.append(Int64(position))
                targets.handler.append(target.handler)
                targets.maxAttempts.append(Int64(target.maxAttempts))
                targets.ordered.append(target.keepsCollectionOrder)
            }
        }
        // `numbered` is materialised once (it calls nextval), so the events and their deliveries
        // agree on the sequences. Foreign keys are checked at the statement's end.
        let rows = try await connection.query("""
            WITH input AS (
                SELECT * FROM unnest(\(records.map(\.collection))::text[], \(records.map(\.id))::text[], \(records.map(\.created))::text[],
                                     \(records.map(\.updated))::text[], \(inserts.map(\.data))::text[])
                    WITH ORDINALITY AS i(collection, record_id, created, updated, data, n)
            ), inserted AS (
                -- A missing collection or a taken id inserts nothing, without an error that would
                -- abort the transaction.
                INSERT INTO records (collection, id, created, updated, version, data)
                SELECT i.collection, i.record_id, i.created, i.updated, 1, i.data::json FROM input i
                WHERE EXISTS (SELECT 1 FROM collections c WHERE c.name = i.collection)
                ORDER BY i.n
                ON CONFLICT (collection, id) DO NOTHING
                RETURNING collection, id
            ), numbered AS (
                SELECT nextval('hook_event_sequence') AS sequence, e.*, i.collection, i.record_id, \(node)::text AS node
                FROM unnest(\(events.insert)::bigint[], \(events.id)::text[], \(events.timestamp)::text[], \(events.depth)::bigint[],
                            \(events.created)::text[], \(events.data)::text[]) AS e(n, id, timestamp, depth, created, data)
                JOIN input i ON i.n = e.n
                JOIN inserted r ON r.collection = i.collection AND r.id = i.record_id
            ), event AS (
                INSERT INTO hook_events (sequence, id, type, collection, record_id, timestamp, depth, created, data, old_data)
                SELECT sequence, id, 'record.created', collection, record_id, timestamp, depth, created, data::json, NULL FROM numbered
            ), delivery AS (
                INSERT INTO hook_deliveries (id, event_sequence, handler, collection, record_id, status, max_attempts, created, updated,
                                             collection_ordered, claimed_by)
                SELECT s.sequence * \(Int64(Outbox.maxTargets)) + t.position, s.sequence, t.handler, s.collection, s.record_id, 'pending',
                       t.max_attempts, s.created, s.created, t.collection_ordered,
                       CASE WHEN NOT (\(unescaped: PostgresOutbox.laneHeldElsewhere())) THEN s.node END
                FROM numbered s
                JOIN unnest(\(targets.insert)::bigint[], \(targets.position)::bigint[], \(targets.handler)::text[],
                            \(targets.maxAttempts)::bigint[], \(targets.ordered)::boolean[])
                     AS t(n, position, handler, max_attempts, collection_ordered) ON t.n = s.n
                RETURNING event_sequence, id - event_sequence * \(Int64(Outbox.maxTargets)) AS position, claimed_by IS NULL AS elsewhere
            )
            SELECT i.n, r.id IS NOT NULL, EXISTS (SELECT 1 FROM collections c WHERE c.name = i.collection), s.sequence, u.positions
            FROM input i
            LEFT JOIN inserted r ON r.collection = i.collection AND r.id = i.record_id
            LEFT JOIN numbered s ON s.n = i.n
            LEFT JOIN (SELECT event_sequence, array_agg(position ORDER BY position) AS positions FROM delivery WHERE elsewhere
                       GROUP BY event_sequence) u ON u.event_sequence = s.sequence
            """, logger: logger)
        var outcomes = [Result<WriteResult, StoreError>](repeating: .failure(.database("the insert was not performed")), count: inserts.count)
        var leftForOthers = false
        for try await (n, inserted, collectionStored, sequence, elsewhere) in rows.decode((Int64, Bool, Bool, Int64?, [Int64]?).self) {
            let index = Int(n - 1)
            let insert = inserts[index]
            let record = insert.record
            guard inserted else {
                outcomes[index] = .failure(collectionStored ? .recordExists(collection: record.collection, id: record.id)
                                                            : .collectionNotFound(record.collection))
                continue
            }
            guard let event = insert.event, let data = eventData[index] else {
                outcomes[index] = .success(WriteResult(record: record))
                continue
            }
            guard let sequence else { throw CorruptOutbox(problem: "an event was stored without its sequence") }
            if elsewhere?.isEmpty == false { leftForOthers = true }
            outcomes[index] = .success(event.result(sequence: sequence, elsewhere: (elsewhere ?? []).map(Int.init), record: record,
                                                    data: data, oldData: nil))
        }
        if leftForOthers { try await PostgresClaims.wakeNodes(connection, logger) }
        return outcomes
    }
}
