import MoonbaseJSON

/// A collection as the API shows it.
public struct CollectionInfo: Sendable, Equatable {
    /// Matches `^[a-z][a-z0-9_]{0,62}$`.
    public let name: String
    /// When it was created, ISO-8601 UTC with milliseconds.
    public let created: String

    public init(name: String, created: String) {
        self.name = name
        self.created = created
    }

    /// `{"name":…,"created":…}`
    public var json: JSONObject {
        JSONObject([("name", .string(name)), ("created", .string(created))])
    }

    /// That same JSON, written directly.
    public func write(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: #"{"name":"#.utf8)
        JSONWriter.writeString(name, into: &buffer)
        buffer.append(contentsOf: #","created":"#.utf8)
        JSONWriter.writeString(created, into: &buffer)
        buffer.append(UInt8(ascii: "}"))
    }
}

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
        var object = JSONObject([
            ("id", .string(id)), ("collection", .string(collection)),
            ("created", .string(created)), ("updated", .string(updated)),
        ])
        for (key, value) in fields where !isSystemField(key) {
            object[key] = value
        }
        return object
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

/// The order of a record listing. Every order is total: ties on a timestamp fall back to the
/// order of insertion, so paging never skips or repeats a record.
public enum RecordSort: Sendable, Equatable {
    case created(ascending: Bool)
    case updated(ascending: Bool)
    case id(ascending: Bool)

    /// Oldest first, used when a request names no sort.
    public static let `default` = RecordSort.created(ascending: true)

    /// Parses the `sort` query parameter: `created`, `-created`, `updated`, `-updated`, `id`,
    /// `-id` (a leading `+` is accepted too). The empty string gives `.default`; anything else nil.
    public init?(parsing text: String) {
        var name = Substring(text)
        var ascending = true
        if name.first == "-" {
            ascending = false
            name = name.dropFirst()
        } else if name.first == "+" {
            name = name.dropFirst()
        }
        switch name {
        case "" where text.isEmpty: self = .default
        case "created": self = .created(ascending: ascending)
        case "updated": self = .updated(ascending: ascending)
        case "id": self = .id(ascending: ascending)
        default: return nil
        }
    }
}

/// One page of a record listing.
public struct RecordPage: Sendable {
    public let items: [Record]
    /// 1-based, as requested (a page past the end is empty, not an error).
    public let page: Int
    /// After clamping to 1...500.
    public let perPage: Int
    /// Records in the whole collection.
    public let totalItems: Int
    /// `ceil(totalItems / perPage)`; 0 for an empty collection (as PocketBase does).
    public let totalPages: Int

    public init(items: [Record], page: Int, perPage: Int, totalItems: Int, totalPages: Int) {
        self.items = items
        self.page = page
        self.perPage = perPage
        self.totalItems = totalItems
        self.totalPages = totalPages
    }

    /// `{"items":[…],"page":1,"per_page":30,"total_items":N,"total_pages":M}`
    public var json: JSONObject {
        JSONObject([
            ("items", .array(items.map { .object($0.json) })),
            ("page", .int(Int64(page))), ("per_page", .int(Int64(perPage))),
            ("total_items", .int(Int64(totalItems))), ("total_pages", .int(Int64(totalPages))),
        ])
    }

    /// That same JSON, written directly.
    public func write(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: #"{"items":["#.utf8)
        for (index, item) in items.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            item.write(into: &buffer)
        }
        buffer.append(contentsOf: #"],"page":"#.utf8)
        appendDecimal(page, to: &buffer)
        buffer.append(contentsOf: #","per_page":"#.utf8)
        appendDecimal(perPage, to: &buffer)
        buffer.append(contentsOf: #","total_items":"#.utf8)
        appendDecimal(totalItems, to: &buffer)
        buffer.append(contentsOf: #","total_pages":"#.utf8)
        appendDecimal(totalPages, to: &buffer)
        buffer.append(UInt8(ascii: "}"))
    }
}

/// Appends the decimal digits of `value`.
private func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    buffer.append(contentsOf: String(value).utf8)
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
