import MoonbaseJSON
import PostgresNIO

/// The SQL of a record listing on PostgreSQL, answering as SQLite's does.
///
/// Filters compare a top-level field of `data` (as `jsonb`: numbers by value) as SQLite's `json_extract` does: null keeps a
/// field that is null or absent; a string equals only a string; numbers compare by value; and
/// since SQLite reads JSON `true`/`false` as 1/0, `true` and `1` match each other, as do
/// `false` and `0`. Text sorts byte by byte (`COLLATE "C"`), ties fall back to insertion order.
enum PostgresRecordQuery {
    /// One statement giving the total of matching records on every row, then a page of them
    /// (`id, created, updated, version, data`, all NULL on the one row of an empty page).
    static func page(collection: String, sort: RecordSort, filters: [RecordFilter], limit: Int, offset: Int) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(collection)
        var conditions = ""
        for filter in filters {
            binds.append(filter.field)
            let field = "(data -> $\(binds.count))::jsonb"
            switch filter.value {
            case .null:
                conditions += " AND coalesce(\(field), 'null'::jsonb) = 'null'::jsonb"
            case .string(let text):
                binds.append(text)
                conditions += " AND \(field) = to_jsonb($\(binds.count)::text)"
            case .bool(let flag):
                conditions += flag ? " AND \(field) IN ('true'::jsonb, '1'::jsonb)" : " AND \(field) IN ('false'::jsonb, '0'::jsonb)"
            case .int, .double:
                binds.append(filter.value.serializedString())
                let alias = filter.value == .int(1) || filter.value == .double(1) ? ", 'true'::jsonb"
                    : filter.value == .int(0) || filter.value == .double(0) ? ", 'false'::jsonb" : ""
                conditions += " AND \(field) IN ($\(binds.count)::jsonb\(alias))"
            case .array, .object:
                break // excluded by RecordFilter.init
            }
        }
        binds.append(Int64(limit))
        let limitParameter = binds.count
        binds.append(Int64(offset))
        let sql = """
            SELECT t.total, r.id, r.created, r.updated, r.version, r.data::text
            FROM (SELECT count(*) AS total FROM records WHERE collection = $1\(conditions)) t
            LEFT JOIN LATERAL (
                SELECT id, created, updated, version, data FROM records WHERE collection = $1\(conditions)
                ORDER BY \(order(sort)) LIMIT $\(limitParameter) OFFSET $\(binds.count)
            ) r ON true
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    private static func order(_ sort: RecordSort) -> String {
        switch sort {
        case .created(true): #"created COLLATE "C" ASC, position ASC"#
        case .created(false): #"created COLLATE "C" DESC, position DESC"#
        case .updated(true): #"updated COLLATE "C" ASC, position ASC"#
        case .updated(false): #"updated COLLATE "C" DESC, position DESC"#
        case .id(true): #"id COLLATE "C" ASC"#
        case .id(false): #"id COLLATE "C" DESC"#
        }
    }
}
