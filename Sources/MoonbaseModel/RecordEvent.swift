import MoonbaseJSON

/// What happened to a record.
public enum RecordEventType: String, Sendable, CaseIterable {
    case created = "record.created"
    case updated = "record.updated"
    case deleted = "record.deleted"
}

/// The event of SPEC section 4: one value that travels from the write, through the outbox, to
/// the Lua table every handler receives. A write makes exactly one; its before-hooks and its
/// after-hooks see the same `id`.
public struct RecordEvent: Sendable, Equatable {
    /// Unique id of this event; the same on every retry (an idempotency key).
    public var id: String
    public var type: RecordEventType
    public var collection: String
    public var recordID: String
    /// The full record (`Record.json`) after the write; for a delete, as it was.
    public var data: JSONObject
    /// The record before an update or delete.
    public var oldData: JSONObject?
    /// ISO-8601 UTC with milliseconds: the stored record's `updated` for a create or update,
    /// when the delete was asked for otherwise.
    public var timestamp: String
    /// Which attempt at delivering this event this is, from 1.
    public var attempt: Int
    /// How many hook-made writes led to this event: 0 for a write from outside, 1 for a write a
    /// handler of such an event made, and so on (the host's limit against hook loops).
    public var depth: Int
    /// Sent again by hand although a later event of the same record had reached this handler
    /// (a forced retry): the handler may want to skip stale data.
    public var redelivered: Bool

    public init(id: String, type: RecordEventType, collection: String, recordID: String,
                data: JSONObject, oldData: JSONObject? = nil, timestamp: String, attempt: Int = 1, depth: Int = 0,
                redelivered: Bool = false) {
        self.id = id
        self.type = type
        self.collection = collection
        self.recordID = recordID
        self.data = data
        self.oldData = oldData
        self.timestamp = timestamp
        self.attempt = attempt
        self.depth = depth
        self.redelivered = redelivered
    }
}

extension RecordEvent {
    /// The event as handlers see it (SPEC section 4): `{"id","type","collection_name",
    /// "record_id","data","old_data","timestamp"}`, `old_data` null when there is none. The
    /// delivery's own fields (`attempt`, `redelivered`) are left out.
    public var json: JSONObject {
        [
            "id": .string(id), "type": .string(type.rawValue), "collection_name": .string(collection),
            "record_id": .string(recordID), "data": .object(data), "old_data": oldData.map { .object($0) } ?? .null,
            "timestamp": .string(timestamp),
        ]
    }
}
