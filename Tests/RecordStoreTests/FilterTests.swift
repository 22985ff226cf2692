import MoonbaseJSON
import Testing
@testable import RecordStore

@Suite("Filters")
struct FilterTests {
    @Test(arguments: Engine.allCases) func filtersKeepRecordsWhoseFieldsEqualTheValues(engine: Engine) async throws {
        let store = try await makeStore(engine)
        try await insert(store, "posts", ["author": "ada", "draft": true, "views": 10, "score": 1.5])
        let second = try await insert(store, "posts", ["author": "ada", "draft": false, "views": 3])
        try await insert(store, "posts", ["author": "bob", "draft": false, "views": 10, "my field": "x"])
        func ids(_ filters: [RecordFilter?], sort: RecordSort = .default) async throws -> Int {
            try await store.list(collection: "posts", page: 1, perPage: 10, sort: sort, filters: filters.map { try #require($0) }).totalItems
        }
        #expect(try await ids([RecordFilter(field: "author", value: "ada")]) == 2)
        #expect(try await ids([RecordFilter(field: "author", value: "ada"), RecordFilter(field: "draft", value: false)]) == 1)
        #expect(try await ids([RecordFilter(field: "views", value: 10)]) == 2)
        #expect(try await ids([RecordFilter(field: "score", value: 1.5)]) == 1)
        #expect(try await ids([RecordFilter(field: "score", value: .null)]) == 2, "null matches absent fields")
        #expect(try await ids([RecordFilter(field: "my field", value: "x")]) == 1)
        #expect(try await ids([RecordFilter(field: "author", value: "eve")]) == 0)
        let page = try await store.list(collection: "posts", page: 1, perPage: 1, sort: .created(ascending: false),
                                  filters: [try #require(RecordFilter(field: "author", value: "ada"))])
        #expect(page.items.map(\.id) == [second.id] && page.totalPages == 2)
    }

    /// The engines agree on SQLite's reading of JSON: `true` is 1 and `false` is 0, numbers
    /// compare by value (3 = 3.0), a string never equals a number, and JSON null is null.
    @Test(arguments: Engine.allCases) func filtersCompareAsSQLiteReadsJSON(engine: Engine) async throws {
        let store = try await makeStore(engine)
        try await insert(store, "posts", ["v": true])
        try await insert(store, "posts", ["v": 1])
        try await insert(store, "posts", ["v": 1.0])
        try await insert(store, "posts", ["v": "1"])
        try await insert(store, "posts", ["v": false])
        try await insert(store, "posts", ["v": 0])
        try await insert(store, "posts", ["v": .null])
        try await insert(store, "posts", ["v": 3])
        try await insert(store, "posts", ["v": ["nested": 1]])
        func count(_ value: JSONValue) async throws -> Int {
            try await store.list(collection: "posts", page: 1, perPage: 10, sort: .default,
                                 filters: [try #require(RecordFilter(field: "v", value: value))]).totalItems
        }
        #expect(try await count(true) == 3)
        #expect(try await count(1) == 3)
        #expect(try await count(1.0) == 3)
        #expect(try await count("1") == 1)
        #expect(try await count(false) == 2)
        #expect(try await count(0) == 2)
        #expect(try await count(3.0) == 1)
        #expect(try await count(.null) == 1)
        #expect(try await count("nested") == 0)
    }

    @Test func filtersRefuseWhatTheyCannotCompare() {
        #expect(RecordFilter(field: "tags", value: ["a"]) == nil)
        #expect(RecordFilter(field: "meta", value: ["a": 1]) == nil)
        #expect(RecordFilter(field: #"a"b"#, value: 1) == nil)
        #expect(RecordFilter(field: "", value: 1) == nil)
    }
}
