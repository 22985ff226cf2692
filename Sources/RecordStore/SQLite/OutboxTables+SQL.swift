/// SQL of the outbox, as constants for GRDB's statement cache. Only `OutboxTables` runs it.
enum OutboxSQL {
    private static let deleted = OutboxTables.typeCode(.deleted)
    private static let maxTargets = Outbox.maxTargets

    // MARK: Storing an event

    static let nextSequence = "SELECT coalesce(max(sequence), 0) + 1 FROM hook_events"
    static let insertEvent = """
        INSERT INTO hook_events (sequence, prefix, id, type, record, handlers, pending, created, timestamp, depth, old_data)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    /// Rows for the targets from ?4 on of the handler set ?3 (its JSON), of event ?1 made at ?2.
    static let insertDeliveriesPastEventRow = """
        INSERT INTO hook_deliveries (id, status, attempts, max_attempts, updated)
        SELECT ?1 * \(maxTargets) + key, 'pending', 0, value ->> 1, ?2 FROM json_each(?3) WHERE key >= ?4
        """

    // MARK: Reading an event

    /// Columns read by `OutboxTables.decodeCore`, from `hook_events e`.
    static let coreColumns = """
        e.sequence, e.prefix, e.id, e.type, e.handlers, e.pending, e.detached, e.created, e.timestamp, e.finished, e.timings, e.depth
        """
    static let coreColumnCount = 12

    /// The `member` ("collection" or "id") of the record an event is about: from the event's own
    /// copy of the record if it has one, else from the record row, which is then still the
    /// version the event carries.
    private static func recordName(_ member: String) -> String {
        """
        CASE WHEN e.data IS NOT NULL THEN e.data ->> '$.\(member)' WHEN e.type = \(deleted) THEN e.old_data ->> '$.\(member)' \
        ELSE (SELECT r.\(member) FROM records r WHERE r.rowid = e.record AND r.event = e.sequence) END
        """
    }

    private static let collection = recordName("collection")

    /// An event's core columns, then its record's collection and id.
    static let eventSummary = "SELECT \(coreColumns), \(collection), \(recordName("id")) FROM hook_events e WHERE e.sequence = ?"
    /// An event's core columns, then its data and old data. The data is the event's own copy, else
    /// the record row that names the event (a create or update whose record has not changed
    /// since), else (a delete) its `old_data`.
    static let eventWithData = """
        SELECT \(coreColumns), coalesce(e.data, CASE WHEN e.type = \(deleted) THEN e.old_data \
        ELSE (SELECT \(Schema.recordJSON("r")) FROM records r WHERE r.rowid = e.record AND r.event = e.sequence) END), e.old_data
        FROM hook_events e WHERE e.sequence = ?
        """
    static let handlerSet = "SELECT handlers FROM hook_handler_sets WHERE id = ?"
    static let idPrefix = "SELECT prefix FROM hook_event_id_prefixes WHERE id = ?"
    /// The rows of the deliveries with ids between ?1 and ?2 (an event's).
    static let deliveryRows = """
        SELECT id, status, attempts, max_attempts, next_attempt_at, last_error, updated, redelivered
        FROM hook_deliveries WHERE id BETWEEN ? AND ?
        """

    // MARK: Finding events

    /// Events from sequence ?1 on with a pending delivery in their row.
    static func eventsPendingInRow(descending: Bool) -> String {
        descending ? pendingInRowNewestFirst : pendingInRowOldestFirst
    }

    private static let pendingInRowOldestFirst = "SELECT sequence FROM hook_events WHERE pending <> 0 AND sequence >= ? ORDER BY sequence"
    private static let pendingInRowNewestFirst = pendingInRowOldestFirst + " DESC"
    /// Events with a pending or failed delivery row, from delivery id ?1 on, oldest first.
    static let unfinishedRowEvents = """
        SELECT DISTINCT id / \(maxTargets) FROM hook_deliveries WHERE status IN ('pending', 'failed') AND id >= ? ORDER BY 1
        """
    /// Events with a delivery row in status ?1, newest first.
    static let rowEvents = "SELECT DISTINCT id / \(maxTargets) FROM hook_deliveries WHERE status = ? ORDER BY 1 DESC"

    /// Every event, newest first; of collection ?1 only if `ofCollection`.
    static func events(ofCollection: Bool) -> String {
        ofCollection ? eventsOfCollection : allEvents
    }

    private static let allEvents = "SELECT e.sequence FROM hook_events e ORDER BY e.sequence DESC"
    private static let eventsOfCollection = "SELECT e.sequence FROM hook_events e WHERE \(collection) = ? ORDER BY e.sequence DESC"

    /// Events after ?1 of record (?3, ?4), newest first. ?2 is the record's rowid if it exists:
    /// an event that still reads its record from a row other than that one is of another record,
    /// known without reading a name.
    static let laterEventsOfRecord = """
        SELECT e.sequence FROM hook_events e
        WHERE e.sequence > ?1 AND (e.record = ?2 OR e.data IS NOT NULL OR e.type = \(deleted))
          AND \(collection) = ?3 AND \(recordName("id")) = ?4
        ORDER BY e.sequence DESC
        """

    // MARK: Attempts

    /// What recording an event's attempts reads of its row.
    static let attemptState = "SELECT handlers, created, pending, detached, finished, timings FROM hook_events WHERE sequence = ?"
    static let updateEventDeliveries = "UPDATE hook_events SET pending = ?, detached = ?, finished = ?, timings = ? WHERE sequence = ?"
    /// A delivery's row of its own: ?1 its id, ?4 its target in handler set ?10, then its state.
    static let detach = """
        INSERT INTO hook_deliveries (id, status, attempts, max_attempts, next_attempt_at, last_error, last_started, last_duration_ms, updated)
        SELECT ?1, ?2, ?3, handlers -> ?4 ->> 1, ?5, ?6, ?7, ?8, ?9 FROM hook_handler_sets WHERE id = ?10
        """
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
    static let attempts = """
        SELECT attempt, succeeded, started, duration_ms, error FROM hook_attempts WHERE delivery_id = ? ORDER BY attempt, id
        """
    static let requeue = """
        UPDATE hook_deliveries
        SET status = 'pending', next_attempt_at = NULL, max_attempts = max(max_attempts, attempts + 1), updated = ?,
            redelivered = ?
        WHERE id = ?
        """

    // MARK: Purging

    /// ?1 the cutoff in milliseconds, ?2 as text, ?3 the batch size. An event goes once nothing
    /// is pending in its row and every row of its own succeeded, all before the cutoff.
    static let purgeEvents = """
        DELETE FROM hook_events WHERE sequence IN (
            SELECT sequence FROM hook_events e
            WHERE pending = 0 AND created + coalesce(finished, 0) < ?1
              AND sequence < (SELECT max(sequence) FROM hook_events)  -- so sequences are never reused
              AND NOT EXISTS (SELECT 1 FROM hook_deliveries d
                              WHERE d.id BETWEEN e.sequence * \(maxTargets) AND e.sequence * \(maxTargets) + \(maxTargets - 1)
                                AND (d.status <> 'succeeded' OR d.updated >= ?2))
            ORDER BY sequence LIMIT ?3
        ) RETURNING sequence
        """
    static let deleteAttempts = "DELETE FROM hook_attempts WHERE delivery_id BETWEEN ? AND ?"
    static let deleteDeliveries = "DELETE FROM hook_deliveries WHERE id BETWEEN ? AND ?"
}
