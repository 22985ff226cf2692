import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

@Suite("Listing")
struct ListingTests {
    @Test(arguments: Engine.allCases) func paginationMath(engine: Engine) async throws {
        let store = try await makeStore(engine)
        var inserted: [String] = []
        for i in 0..<45 {
            inserted.append(try await insert(store, "posts", ["n": .int(Int64(i))]).id)
        }

        let first = try await store.list(collection: "posts", page: 1, perPage: 10, sort: .default)
        #expect(first.page == 1 && first.perPage == 10)
        #expect(first.totalItems == 45 && first.totalPages == 5)
        #expect(first.items.count == 10)

        let last = try await store.list(collection: "posts", page: 5, perPage: 10, sort: .default)
        #expect(last.items.count == 5)  // partial last page
        #expect(last.totalPages == 5)

        let beyond = try await store.list(collection: "posts", page: 6, perPage: 10, sort: .default)
        #expect(beyond.items.isEmpty)
        #expect(beyond.page == 6 && beyond.totalItems == 45 && beyond.totalPages == 5)

        let farBeyond = try await store.list(collection: "posts", page: Int.max, perPage: 500, sort: .default)
        #expect(farBeyond.items.isEmpty && farBeyond.totalItems == 45)

        // Walking the pages visits every record once, in insertion order (all share few timestamps).
        var walked: [String] = []
        for page in 1...5 {
            walked += try await store.list(collection: "posts", page: page, perPage: 10, sort: .default).items.map(\.id)
        }
        #expect(walked == inserted)

        let exact = try await store.list(collection: "posts", page: 1, perPage: 45, sort: .default)
        #expect(exact.totalPages == 1 && exact.items.count == 45)
        #expect(try await store.list(collection: "posts", page: 1, perPage: 44, sort: .default).totalPages == 2)
    }

    @Test(arguments: Engine.allCases) func perPageAndPageAreClamped(engine: Engine) async throws {
        let store = try await makeStore(engine)
        for i in 0..<3 { try await insert(store, "posts", ["n": .int(Int64(i))]) }

        let tooSmall = try await store.list(collection: "posts", page: 1, perPage: 0, sort: .default)
        #expect(tooSmall.perPage == 1 && tooSmall.items.count == 1 && tooSmall.totalPages == 3)
        #expect(try await store.list(collection: "posts", page: 1, perPage: -5, sort: .default).perPage == 1)
        #expect(try await store.list(collection: "posts", page: 1, perPage: 1000, sort: .default).perPage == 500)
        #expect(try await store.list(collection: "posts", page: 1, perPage: 500, sort: .default).perPage == 500)

        let pageZero = try await store.list(collection: "posts", page: 0, perPage: 2, sort: .default)
        #expect(pageZero.page == 1 && pageZero.items.count == 2)
        #expect(try await store.list(collection: "posts", page: -3, perPage: 2, sort: .default).page == 1)
    }

    @Test(arguments: Engine.allCases) func emptyCollection(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let page = try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default)
        #expect(page.items.isEmpty && page.totalItems == 0 && page.totalPages == 0 && page.page == 1)

        var buffer: [UInt8] = []
        page.write(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self)
                == #"{"items":[],"page":1,"per_page":30,"total_items":0,"total_pages":0}"#)
    }

    @Test(arguments: Engine.allCases) func pageJSON(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let a = try await insert(store, "posts", ["title": .string("a")])
        let b = try await insert(store, "posts", ["title": .string("b")])
        let page = try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default)

        var buffer: [UInt8] = []
        page.write(into: &buffer)
        let parsed = try parseObject(buffer)
        #expect(parsed.keys == ["items", "page", "per_page", "total_items", "total_pages"])
        #expect(parsed == page.json)
        #expect(parsed["items"] == .array([.object(a.json), .object(b.json)]))
        #expect(parsed["total_items"] == .int(2) && parsed["total_pages"] == .int(1))
        #expect(parsed["per_page"] == .int(30) && parsed["page"] == .int(1))
    }

    /// Four records with chosen timestamps and ids, inserted in the order r0…r3. Ties on `created`
    /// (r0, r2) and on `updated` (r1, r2) must fall back to insertion order.
    private static func sortFixture(_ engine: Engine) async throws -> (any RecordStore, [String]) {
        let store = try await makeStore(engine)
        let specs: [(id: String, created: String, updated: String)] = [
            ("bbbbbbbbbbbbbbb", "2020-01-02T00:00:00.000Z", "2020-01-09T00:00:00.000Z"),
            ("ddddddddddddddd", "2020-01-01T00:00:00.000Z", "2020-01-05T00:00:00.000Z"),
            ("aaaaaaaaaaaaaaa", "2020-01-02T00:00:00.000Z", "2020-01-05T00:00:00.000Z"),
            ("ccccccccccccccc", "2020-01-03T00:00:00.000Z", "2020-01-07T00:00:00.000Z"),
        ]
        for spec in specs {
            _ = try await store.insert(Record(id: spec.id, collection: "posts", created: spec.created, updated: spec.updated,
                                        version: 1, fields: ["id_copy": .string(spec.id)])).record
        }
        return (store, specs.map(\.id))
    }

    private static func order(_ store: any RecordStore, _ sort: RecordSort, _ ids: [String]) async throws -> [Int] {
        try await store.list(collection: "posts", page: 1, perPage: 30, sort: sort).items.map { ids.firstIndex(of: $0.id)! }
    }

    @Test(arguments: Engine.allCases) func sortByCreated(engine: Engine) async throws {
        let (store, ids) = try await Self.sortFixture(engine)
        #expect(try await Self.order(store, .created(ascending: true), ids) == [1, 0, 2, 3])
        #expect(try await Self.order(store, .created(ascending: false), ids) == [3, 2, 0, 1])
        #expect(try await Self.order(store, .default, ids) == [1, 0, 2, 3])
    }

    @Test(arguments: Engine.allCases) func sortByUpdated(engine: Engine) async throws {
        let (store, ids) = try await Self.sortFixture(engine)
        #expect(try await Self.order(store, .updated(ascending: true), ids) == [1, 2, 3, 0])
        #expect(try await Self.order(store, .updated(ascending: false), ids) == [0, 3, 2, 1])

        // A replace stamps `updated` with now, which moves the record to the end.
        _ = try await store.replace(collection: "posts", id: ids[1], fields: [:], ifVersion: 1).record
        #expect(try await Self.order(store, .updated(ascending: true), ids) == [2, 3, 0, 1])
        #expect(try await Self.order(store, .updated(ascending: false), ids) == [1, 0, 3, 2])
        // …and leaves `created` order alone.
        #expect(try await Self.order(store, .created(ascending: true), ids) == [1, 0, 2, 3])
    }

    @Test(arguments: Engine.allCases) func sortByID(engine: Engine) async throws {
        let (store, ids) = try await Self.sortFixture(engine)
        #expect(try await Self.order(store, .id(ascending: true), ids) == [2, 0, 3, 1])
        #expect(try await Self.order(store, .id(ascending: false), ids) == [1, 3, 0, 2])
    }

    @Test(arguments: Engine.allCases) func sortsPageWithoutGapsOrRepeats(engine: Engine) async throws {
        let store = try await makeStore(engine)
        for i in 0..<25 { try await insert(store, "posts", ["n": .int(Int64(i))]) }
        for sort: RecordSort in [.created(ascending: true), .created(ascending: false), .updated(ascending: true),
                                 .updated(ascending: false), .id(ascending: true), .id(ascending: false)] {
            let whole = try await store.list(collection: "posts", page: 1, perPage: 25, sort: sort).items.map(\.id)
            var paged: [String] = []
            for page in 1...4 {
                paged += try await store.list(collection: "posts", page: page, perPage: 7, sort: sort).items.map(\.id)
            }
            #expect(paged == whole, "sort \(sort)")
            #expect(Set(whole).count == 25)
        }
        let byID = try await store.list(collection: "posts", page: 1, perPage: 25, sort: .id(ascending: true)).items.map(\.id)
        #expect(byID == byID.sorted())
    }

    @Test func parsingSortParameter() {
        #expect(RecordSort(parsing: "created") == .created(ascending: true))
        #expect(RecordSort(parsing: "-created") == .created(ascending: false))
        #expect(RecordSort(parsing: "+created") == .created(ascending: true))
        #expect(RecordSort(parsing: "updated") == .updated(ascending: true))
        #expect(RecordSort(parsing: "-updated") == .updated(ascending: false))
        #expect(RecordSort(parsing: "id") == .id(ascending: true))
        #expect(RecordSort(parsing: "-id") == .id(ascending: false))
        #expect(RecordSort(parsing: "") == .default)
        #expect(RecordSort.default == .created(ascending: true))
        for bad in ["-", "title", "Created", "--id", " id", "created,id"] {
            #expect(RecordSort(parsing: bad) == nil, "\(bad)")
        }
    }
}
