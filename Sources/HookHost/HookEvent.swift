import MoonbaseJSON

/// What happened to a record.
public enum RecordEventType: String, Sendable, CaseIterable {
    case created = "record.created"
    case updated = "record.updated"
    case deleted = "record.deleted"
}

/// The event every handler receives (SPEC section 4).
public struct HookEvent: Sendable {
    /// Unique id of this event; the same on every retry (an idempotency key).
    public var id: String
    public var type: RecordEventType
    public var collection: String
    public var recordID: String
    /// The full record after the write (for a delete: as it was).
    public var data: JSONObject
    /// The record before an update or delete.
    public var oldData: JSONObject?
    /// ISO-8601 UTC with milliseconds.
    public var timestamp: String
    /// Which attempt at delivering this event this is, from 1.
    public var attempt: Int
    /// How many hook-made writes led to this event: 0 for a write from outside, 1 for a write a
    /// handler of such an event made, and so on (the host's limit against hook loops).
    public var depth: Int

    public init(id: String, type: RecordEventType, collection: String, recordID: String,
                data: JSONObject, oldData: JSONObject? = nil, timestamp: String, attempt: Int = 1, depth: Int = 0) {
        self.id = id
        self.type = type
        self.collection = collection
        self.recordID = recordID
        self.data = data
        self.oldData = oldData
        self.timestamp = timestamp
        self.attempt = attempt
        self.depth = depth
    }
}

/// What the before-hooks decided about a write.
public enum BeforeOutcome: Sendable, Equatable {
    /// Go ahead and store this data (possibly changed by the hooks).
    case proceed(JSONObject)
    /// A hook called `reject(message, status)`.
    case rejected(message: String, status: Int)
    /// A hook failed (error or budget): the write is refused, details are in the log only.
    case failed(String)
}
