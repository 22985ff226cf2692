import MoonbaseJSON
import MoonbaseModel

/// One page of a record listing.
public struct RecordPage: Sendable {
    /// The page size when none is asked for (PocketBase's).
    public static let defaultPerPage = 30
    /// The largest page size; larger requests get this many.
    public static let maxPerPage = 500

    public let items: [Record]
    /// 1-based, as requested (a page past the end is empty, not an error).
    public let page: Int
    /// After clamping to 1...`maxPerPage`.
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

/// The slice of a listing a request asks for, as every engine reads it: `page` below 1 counts as
/// 1, `perPage` is clamped to 1...`RecordPage.maxPerPage`.
struct RecordWindow {
    let page: Int
    let perPage: Int
    /// Records before the page; nil when it would overflow (a page past any possible record).
    let offset: Int?

    init(page: Int, perPage: Int) {
        self.page = max(page, 1)
        self.perPage = min(max(perPage, 1), RecordPage.maxPerPage)
        let (offset, overflow) = (self.page - 1).multipliedReportingOverflow(by: self.perPage)
        self.offset = overflow ? nil : offset
    }

    /// The page of `items`, out of `total` matching records.
    func page(_ items: [Record], total: Int) -> RecordPage {
        RecordPage(items: items, page: page, perPage: perPage, totalItems: total, totalPages: total == 0 ? 0 : (total - 1) / perPage + 1)
    }
}

/// Appends the decimal digits of `value`.
private func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    buffer.append(contentsOf: String(value).utf8)
}
