import GRDB
import MoonbaseJSON

/// The order of a record listing. Every order is total: ties on a timestamp fall back to the
/// order of insertion, so paging never skips or repeats a record.
public enum RecordSort: Sendable, Equatable {
    /// By creation time (`created`, or `-created` for newest first).
    case created(ascending: Bool)
    /// By last change (`updated` / `-updated`).
    case updated(ascending: Bool)
    /// By id (`id` / `-id`): an arbitrary but stable order.
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

    /// The `sort` parameter that parses to this order (`created`, `-updated`, …).
    public var parameter: String {
        switch self {
        case .created(let ascending): (ascending ? "" : "-") + "created"
        case .updated(let ascending): (ascending ? "" : "-") + "updated"
        case .id(let ascending): (ascending ? "" : "-") + "id"
        }
    }
}

/// Keeps the records whose field `field` equals `value` (a scalar); a null value keeps those
/// whose field is null or absent.
public struct RecordFilter: Sendable, Equatable {
    public let field: String
    public let value: JSONValue

    /// Nil when `value` is an array or an object, which a filter cannot compare, or when the
    /// field name is empty or holds a double quote (it is quoted in a JSON path).
    public init?(field: String, value: JSONValue) {
        switch value {
        case .array, .object: return nil
        default: break
        }
        if field.isEmpty || field.contains("\"") { return nil }
        self.field = field
        self.value = value
    }

    /// The JSON path of the field, quoted so names with dots or spaces work, then the value
    /// (booleans as SQLite reads them from JSON: 1 and 0).
    var arguments: StatementArguments {
        let path = "$.\"" + field + "\""
        switch value {
        case .null: return [path]
        case .bool(let flag): return [path, flag ? 1 : 0]
        case .int(let number): return [path, number]
        case .double(let number): return [path, number]
        case .string(let text): return [path, text]
        case .array, .object: return [path] // excluded by init
        }
    }
}
