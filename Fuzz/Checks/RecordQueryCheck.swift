import HummingbirdCore
import MoonbaseServer
import RecordStore

extension FuzzChecks {
    /// The records listing's query string: any text either gives a clear 400 or a query within
    /// bounds, and the query a parse gives writes out (`queryString`) to a string that parses
    /// back to the same query.
    public static func recordQuery(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        let query: RecordListQuery
        do throws(APIError) {
            query = try RecordListQuery(parameters: URI("/records?" + text).queryParameters)
        } catch {
            return error.status == .badRequest && !error.message.isEmpty ? nil : "an error that is not a clear 400: \(error)"
        }
        guard query.page >= 1, (1...RecordPage.maxPerPage).contains(query.perPage) else {
            return "out of bounds: page \(query.page), per_page \(query.perPage)"
        }
        do throws(APIError) {
            let again = try RecordListQuery(parameters: URI("/records?" + query.queryString).queryParameters)
            return again == query ? nil : "\(query.queryString) parses to \(again), not \(query)"
        } catch {
            return "\(query.queryString) (written from \(text)) does not parse: \(error.message)"
        }
    }
}
