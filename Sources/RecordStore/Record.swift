import MoonbaseJSON

/// One record: the system fields, kept apart from the user's fields.
public struct Record: Sendable, Equatable {
    /// 15 characters `[a-z0-9]`, unique within its collection.
    public let id: String
    /// The collection it belongs to.
    public let collection: String
    /// ISO-8601 UTC with milliseconds; never changes.
    public let created: String
    /// ISO-8601 UTC with milliseconds; set on every replace.
    public let updated: String
    /// Starts at 1 and grows by 1 per update; `replace` and `delete` take the version the caller
    /// read, so a write based on stale data is refused instead of silently lost.
    public let version: Int64
    /// The user's fields only, in the order they were given; never contains a system field name.
    public let fields: JSONObject

    /// Builds a record as given. The store drops system field names from `fields` when it writes.
    public init(id: String, collection: String, created: String, updated: String, version: Int64, fields: JSONObject) {
        self.id = id
        self.collection = collection
        self.created = created
        self.updated = updated
        self.version = version
        self.fields = fields
    }

    /// The same record with other user fields (system field names dropped) — for before-hooks
    /// that change the data of a record not yet written.
    public func withFields(_ fields: JSONObject) -> Record {
        Record(id: id, collection: collection, created: created, updated: updated, version: version,
               fields: RecordStore.droppingSystemFields(fields))
    }

    /// `{"id","collection","created","updated", ...fields}` — the API shape of SPEC section 10.
    public var json: JSONObject {
        JSONObject(prefix: [
            ("id", .string(id)), ("collection", .string(collection)),
            ("created", .string(created)), ("updated", .string(updated)),
        ], then: fields)
    }

    /// Writes `json` straight into `buffer`, without building the intermediate object (the
    /// response fast path).
    public func write(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: #"{"id":"#.utf8)
        JSONWriter.writeString(id, into: &buffer)
        buffer.append(contentsOf: #","collection":"#.utf8)
        JSONWriter.writeString(collection, into: &buffer)
        buffer.append(contentsOf: #","created":"#.utf8)
        JSONWriter.writeString(created, into: &buffer)
        buffer.append(contentsOf: #","updated":"#.utf8)
        JSONWriter.writeString(updated, into: &buffer)
        for (key, value) in fields where !isSystemField(key) {
            buffer.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &buffer)
            buffer.append(UInt8(ascii: ":"))
            value.write(into: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }
}

/// Whether `key` is one of `RecordStore.systemFields`; a `switch` on four short literals is cheaper
/// than hashing the key into a `Set` for every field written.
@inline(__always)
func isSystemField(_ key: String) -> Bool {
    switch key {
    case "id", "collection", "created", "updated": return true
    default: return false
    }
}
