import MoonbaseJSON

/// One record: the system fields, kept apart from the user's fields.
///
/// This type is the one place where a record's shape is defined: which field names the store
/// owns (`systemFields`), that user fields never hold them (the initializer drops them, so no
/// other code strips them again), and the JSON shape of SPEC section 10 (`json` and
/// `write(into:)`, both from `forEachSystemField`).
public struct Record: Sendable, Equatable {
    /// Field names the store owns; a request or a hook cannot set them as fields.
    public static let systemFields: [String] = ["id", "collection", "created", "updated"]

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

    /// Builds a record; system field names in `fields` are dropped.
    public init(id: String, collection: String, created: String, updated: String, version: Int64, fields: JSONObject) {
        self.id = id
        self.collection = collection
        self.created = created
        self.updated = updated
        self.version = version
        self.fields = Self.droppingSystemFields(fields)
    }

    /// A record not stored yet: a fresh id, `created` = `updated` = now and version 1, so
    /// before-hooks see the id the write will have.
    public static func new(collection: String, fields: JSONObject) -> Record {
        let now = Timestamp.now()
        return Record(id: RecordID.make(), collection: collection, created: now, updated: now, version: 1, fields: fields)
    }

    /// The same record with other user fields (system field names dropped), for before-hooks
    /// that change the data of a write.
    public func withFields(_ fields: JSONObject) -> Record {
        Record(id: id, collection: collection, created: created, updated: updated, version: version, fields: fields)
    }

    /// `{"id","collection","created","updated", ...fields}`, the API shape of SPEC section 10.
    public var json: JSONObject {
        var prefix: [(String, JSONValue)] = []
        prefix.reserveCapacity(Self.systemFields.count)
        forEachSystemField { key, value in prefix.append((key, .string(value))) }
        return JSONObject(prefix: prefix, then: fields)
    }

    /// Writes `json` straight into `buffer`, without building the intermediate object (the
    /// response fast path).
    public func write(into buffer: inout [UInt8]) {
        var separator = UInt8(ascii: "{")
        forEachSystemField { key, value in
            buffer.append(separator)
            separator = UInt8(ascii: ",")
            JSONWriter.writeString(key, into: &buffer)
            buffer.append(UInt8(ascii: ":"))
            JSONWriter.writeString(value, into: &buffer)
        }
        for (key, value) in fields {
            buffer.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &buffer)
            buffer.append(UInt8(ascii: ":"))
            value.write(into: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// The system fields in the order of `systemFields`, with their values.
    @inline(__always)
    private func forEachSystemField(_ body: (String, String) -> Void) {
        body("id", id)
        body("collection", collection)
        body("created", created)
        body("updated", updated)
    }

    /// `fields` without the system field names; no copy in the usual case where there are none.
    public static func droppingSystemFields(_ fields: JSONObject) -> JSONObject {
        guard fields.contains(where: { isSystemField($0.key) }) else { return fields }
        var cleaned = fields
        for key in systemFields {
            _ = cleaned.removeValue(forKey: key)
        }
        return cleaned
    }

    /// Whether `key` is one of `systemFields`; a `switch` on four short literals is cheaper than
    /// hashing the key for every field.
    @inline(__always)
    public static func isSystemField(_ key: String) -> Bool {
        switch key {
        case "id", "collection", "created", "updated": return true
        default: return false
        }
    }
}
