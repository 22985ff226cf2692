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
}
