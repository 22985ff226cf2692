import Foundation
import MoonbaseJSON
import RecordStore

/// The query of `GET /api/v1/collections/{c}/records`: `page`, `per_page`, `sort` and any number of
/// `filter[FIELD]=VALUE` equality filters.
///
/// A filter's value is read as JSON when it is a JSON scalar (`42`, `true`, `null`, `"42"`), else
/// as the text itself: `filter[status]=paid` and `filter[status]="paid"` are the same, and
/// `filter[n]=42` matches the number 42 (`filter[n]="42"` the string). `null` keeps records
/// whose field is null or missing. Unknown parameters are ignored (clients add cache busters); a
/// parameter of the query given twice is an error, not a guess.
public struct RecordListQuery: Sendable, Equatable {
    public var page = 1
    /// Clamped to `RecordPage.maxPerPage`.
    public var perPage = RecordPage.defaultPerPage
    public var sort = RecordSort.default
    public var filters: [RecordFilter] = []

    public init() {}

    /// Reads the query's (URL-decoded) parameters.
    /// - Throws: 400 with a message naming the parameter that is wrong.
    public init(parameters: some Sequence<(key: Substring, value: Substring)>) throws(APIError) {
        var seen = Set<Substring>()
        for (rawKey, value) in parameters {
            // Hummingbird decodes values but not names, and clients encode `filter[…]`'s brackets.
            let key = rawKey.removingPercentEncoding.map { Substring($0) } ?? rawKey
            if key == "page" || key == "per_page" || key == "sort" || key.hasPrefix("filter[") {
                guard seen.insert(key).inserted else { throw APIError(.badRequest, "\(key) is given more than once") }
            }
            switch key {
            case "page": page = try Self.positiveInteger(value, name: "page") ?? 1
            case "per_page": perPage = min(try Self.positiveInteger(value, name: "per_page") ?? RecordPage.defaultPerPage, RecordPage.maxPerPage)
            case "sort":
                guard let parsed = RecordSort(parsing: String(value)) else {
                    throw APIError(.badRequest, "sort must be one of created, -created, updated, -updated, id, -id")
                }
                sort = parsed
            default:
                guard key.hasPrefix("filter[") else { continue }
                guard key.hasSuffix("]"), key.count > "filter[]".count else {
                    throw APIError(.badRequest, "a filter is written filter[FIELD]=VALUE (got \(key))")
                }
                let field = String(key.dropFirst("filter[".count).dropLast())
                guard let filter = RecordFilter(field: field, value: Self.filterValue(value)) else {
                    throw APIError(.badRequest, "filter[\(field)]: a field name is not empty and holds no double quote; "
                        + "a value is a string, a number, true, false or null")
                }
                filters.append(filter)
            }
        }
    }

    /// The query string that parses back to this query.
    public var queryString: String {
        var parts = ["page=\(page)", "per_page=\(perPage)", "sort=" + Self.escape(sort.parameter)]
        for filter in filters {
            parts.append("filter%5B" + Self.escape(filter.field) + "%5D=" + Self.escape(filter.value.serializedString()))
        }
        return parts.joined(separator: "&")
    }

    /// A JSON scalar as itself; JSON arrays and objects as they are (refused by the filter);
    /// anything else as its text.
    static func filterValue(_ text: Substring) -> JSONValue {
        (try? JSONValue.parse(Array(text.utf8))) ?? .string(String(text))
    }

    private static func positiveInteger(_ text: Substring, name: String) throws(APIError) -> Int? {
        if text.isEmpty { return nil }
        guard let value = Int(text), value >= 1 else { throw APIError(.badRequest, "\(name) must be a positive integer") }
        return value
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}
