import Logging
import MoonbaseJSON
import MoonbaseModel
import PostgresNIO

/// The outbox's tables on PostgreSQL: storing an event with its deliveries, and reading
/// deliveries, attempts and events back as `Delivery`, `DeliveryAttempt` and `OutboxEvent`.
enum PostgresOutbox {
    /// Stores `event` (with its record's `data` and `oldData`) and one pending delivery per
    /// target, in one statement; returns its sequence, the next of `hook_event_sequence`, and the
    /// positions of the deliveries left for another node. A delivery is claimed for `node` unless
    /// its lane has an unfinished delivery that `node` does not hold (see `DeliveryClaims`).
    static func store(_ event: PendingEvent, data: JSONObject, oldData: JSONObject?, node: String,
                      _ connection: PostgresConnection, _ logger: Logger) async throws -> (sequence: Int64, elsewhere: [Int]) {
        let created = Timestamp.format(millisecondsSince1970: event.created)
        let dataText = String(decoding: data.serialized(), as: UTF8.self)
        let oldDataText = oldData.map { String(decoding: $0.serialized(), as: UTF8.self) }
        let targets = event.targets.targets
        let rows = try await connection.query("""
            WITH event AS (
                INSERT INTO hook_events (sequence, id, type, collection, record_id, timestamp, depth, created, data, old_data)
                VALUES (nextval('hook_event_sequence'), \(event.id), \(event.type.rawValue), \(event.collection), \(event.recordID),
                        \(event.timestamp), \(Int64(event.depth)), \(created), \(dataText)::json, \(oldDataText)::json)
                RETURNING sequence
            ), target AS (
                SELECT t.*, NOT (\(unescaped: laneHeldElsewhere())) AS claimed
                FROM unnest(\(targets.map(\.handler))::text[], \(targets.map { Int64($0.maxAttempts) })::bigint[],
                            \(targets.map(\.keepsCollectionOrder))::boolean[])
                     WITH ORDINALITY AS t(handler, max_attempts, collection_ordered, position),
                     (SELECT \(event.collection)::text AS collection, \(event.recordID)::text AS record_id, \(node)::text AS node) AS s
            )
            INSERT INTO hook_deliveries (id, event_sequence, handler, collection, record_id, status, max_attempts, created, updated,
                                         collection_ordered, claimed_by)
            SELECT event.sequence * \(Int64(Outbox.maxTargets)) + target.position - 1, event.sequence, target.handler,
                   \(event.collection), \(event.recordID), 'pending', target.max_attempts, \(created), \(created),
                   target.collection_ordered, CASE WHEN target.claimed THEN \(node) END
            FROM event, target
            RETURNING event_sequence, id - event_sequence * \(Int64(Outbox.maxTargets)), claimed_by IS NOT NULL
            """, logger: logger)
        var sequence: Int64?
        var elsewhere: [Int] = []
        for try await (stored, position, claimed) in rows.decode((Int64, Int64, Bool).self) {
            sequence = stored
            if !claimed { elsewhere.append(Int(position)) }
        }
        guard let sequence else { throw CorruptOutbox(problem: "an event was stored without its deliveries") }
        if !elsewhere.isEmpty { try await PostgresClaims.wakeNodes(connection, logger) }
        return (sequence, elsewhere.sorted())
    }

    /// SQL that is true when a delivery to `handler` (with `ordered`, its `collection_ordered`)
    /// of record `record` in `collection` may not be claimed by node `node`: its lane (the record,
    /// or when ordered the collection) has an unfinished delivery that another node holds or
    /// nobody does, other than those `except` rules out (a condition on `p`). The arguments are
    /// SQL expressions. Two probes of `hook_deliveries_unfinished_lanes`, each by its full key.
    static func laneHeldElsewhere(handler: String = "t.handler", ordered: String = "t.collection_ordered",
                                  collection: String = "s.collection", record: String = "s.record_id", node: String = "s.node",
                                  except: String = "") -> String {
        let unfinished = "p.status IN ('pending', 'failed') AND p.handler = \(handler) AND p.collection = \(collection)"
        let elsewhere = "p.claimed_by IS DISTINCT FROM \(node) \(except)"
        return """
            EXISTS (SELECT 1 FROM hook_deliveries p WHERE \(unfinished) AND p.record_id = \(record) AND \(elsewhere))
            OR (\(ordered) AND EXISTS (SELECT 1 FROM hook_deliveries p WHERE \(unfinished) AND \(elsewhere)))
            """
    }

    /// True for the deliveries `d` of event `e`: their ids are a range of the primary key
    /// (see `Outbox.deliveryID`).
    static let deliveriesOfEvent = """
        d.id >= e.sequence * \(Outbox.maxTargets) AND d.id < (e.sequence + 1) * \(Outbox.maxTargets)
        """

    // MARK: - Reading

    /// The columns `delivery(_:)` reads, from `hook_deliveries d JOIN hook_events e`.
    static let deliveryColumns = """
        d.id, d.event_sequence, e.id, d.handler, d.collection, d.record_id, d.status, d.attempts, d.max_attempts,
        d.next_attempt_at, d.last_error, d.created, d.updated, d.redelivered
        """
    static let deliveryColumnCount = 14
    /// The columns `event(_:from:)` reads, from `hook_events e`.
    static let eventColumns = "e.sequence, e.id, e.type, e.collection, e.record_id, e.timestamp, e.depth, e.data::text, e.old_data::text"

    static func delivery(_ row: PostgresRandomAccessRow) throws -> Delivery {
        let status = try row[6].decode(String.self)
        guard let status = DeliveryStatus(rawValue: status) else { throw CorruptOutbox(problem: "unknown delivery status '\(status)'") }
        return Delivery(id: try row[0].decode(Int64.self), eventSequence: try row[1].decode(Int64.self), eventID: try row[2].decode(String.self),
                        handler: try row[3].decode(String.self), collection: try row[4].decode(String.self),
                        recordID: try row[5].decode(String.self), status: status, attempts: Int(try row[7].decode(Int64.self)),
                        maxAttempts: Int(try row[8].decode(Int64.self)), nextAttemptAt: try row[9].decode(Int64?.self),
                        lastError: try row[10].decode(String?.self), created: try row[11].decode(String.self),
                        updated: try row[12].decode(String.self), redelivered: try row[13].decode(Bool.self))
    }

    /// An event from `eventColumns`, starting at column `start`.
    static func event(_ row: PostgresRandomAccessRow, from start: Int = 0) throws -> OutboxEvent {
        let sequence = try row[start].decode(Int64.self)
        let typeName = try row[start + 2].decode(String.self)
        guard let type = RecordEventType(rawValue: typeName) else { throw CorruptOutbox(problem: "unknown event type '\(typeName)'") }
        func object(_ text: String?) throws -> JSONObject? {
            guard let text else { return nil }
            guard case .object(let object) = try JSONValue.parse(Array(text.utf8)) else {
                throw CorruptOutbox(problem: "the data of event \(sequence) is not a JSON object")
            }
            return object
        }
        guard let data = try object(try row[start + 7].decode(String.self)) else { throw CorruptOutbox(problem: "event \(sequence) has no data") }
        return OutboxEvent(sequence: sequence, event: RecordEvent(
            id: try row[start + 1].decode(String.self), type: type, collection: try row[start + 3].decode(String.self),
            recordID: try row[start + 4].decode(String.self), data: data, oldData: try object(try row[start + 8].decode(String?.self)),
            timestamp: try row[start + 5].decode(String.self), depth: Int(try row[start + 6].decode(Int64.self))))
    }

    /// Every delivery with its event that `rows` hold (shaped by `deliveryColumns, eventColumns`),
    /// each event read once.
    static func deliveriesWithEvents(_ rows: PostgresRowSequence) async throws -> [(delivery: Delivery, event: OutboxEvent)] {
        var result: [(delivery: Delivery, event: OutboxEvent)] = []
        var events: [Int64: OutboxEvent] = [:]
        for try await row in rows {
            let columns = row.makeRandomAccess()
            let delivery = try delivery(columns)
            let event = try events[delivery.eventSequence] ?? event(columns, from: deliveryColumnCount)
            events[delivery.eventSequence] = event
            result.append((delivery, event))
        }
        return result
    }

    /// Every delivery the query finds (shaped by `deliveryColumns`).
    static func deliveries(_ query: PostgresQuery, on client: PostgresClient, _ logger: Logger) async throws -> [Delivery] {
        var result: [Delivery] = []
        for try await row in try await client.query(query, logger: logger) {
            result.append(try delivery(row.makeRandomAccess()))
        }
        return result
    }
}
