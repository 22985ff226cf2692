import Testing
import MoonbaseJSON
@testable import RecordStore

@Suite("Collections")
struct CollectionTests {
    @Test(arguments: Engine.allCases) func createListAndDelete(engine: Engine) async throws {
        let store = try await makeStore(engine, collections: [])
        #expect(try await store.collections().isEmpty)

        let posts = try await store.createCollection(name: "posts")
        let authors = try await store.createCollection(name: "authors")
        #expect(posts.name == "posts")
        #expect(posts.created.count == 24 && posts.created.hasSuffix("Z"))

        #expect(try await store.collections().map(\.name) == ["authors", "posts"])  // by name
        #expect(try await store.collections() == [authors, posts])
        #expect(try await store.collectionExists("posts"))
        #expect(try await !store.collectionExists("comments"))

        try await store.deleteCollection(name: "posts")
        #expect(try await store.collections() == [authors])
        #expect(try await !store.collectionExists("posts"))
        #expect(await storeError { try await store.deleteCollection(name: "posts") } == .collectionNotFound("posts"))
    }

    @Test(arguments: [
        "Posts", "POSTS", "1posts", "_posts", String(repeating: "a", count: 64), "", "my-posts", "my posts",
        "pösts", "posts.x", "posts/x", "posts'; DROP TABLE records; --",
    ])
    func invalidNamesAreRefused(name: String) async throws {
        let store = try SQLiteStore.inMemory()
        #expect(await storeError { try await store.createCollection(name: name) } == .invalidCollectionName(name))
        #expect(try await store.collections().isEmpty)
    }

    @Test(arguments: ["a", "posts", "a_1", "x9", "snake_case_name", String(repeating: "z", count: 63)])
    func validNamesAreAccepted(name: String) async throws {
        let store = try SQLiteStore.inMemory()
        #expect(try await store.createCollection(name: name).name == name)
        #expect(store.collectionExists(name))
    }

    @Test(arguments: Engine.allCases) func duplicateNameIsRefused(engine: Engine) async throws {
        let store = try await makeStore(engine, collections: [])
        let first = try await store.createCollection(name: "posts")
        #expect(await storeError { try await store.createCollection(name: "posts") } == .collectionExists("posts"))
        #expect(try await store.collections() == [first])
    }

    @Test(arguments: Engine.allCases) func deletingACollectionDeletesItsRecordsOnly(engine: Engine) async throws {
        let store = try await makeStore(engine, collections: ["posts", "comments"])
        for i in 0..<3 { try await insert(store, "posts", ["n": .int(Int64(i))]) }
        let comment = try await insert(store, "comments", ["text": .string("hi")])

        try await store.deleteCollection(name: "posts")
        #expect(await storeError { try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default) }
                == .collectionNotFound("posts"))

        // Same name again starts empty: no orphan rows survived.
        _ = try await store.createCollection(name: "posts")
        let page = try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default)
        #expect(page.totalItems == 0 && page.items.isEmpty)

        #expect(try await store.record(collection: "comments", id: comment.id) == comment)
    }

    @Test func errorMessagesAreClear() {
        #expect(StoreError.collectionNotFound("posts").description == "collection 'posts' not found")
        #expect(StoreError.collectionExists("posts").description == "collection 'posts' already exists")
        #expect(StoreError.recordNotFound(collection: "posts", id: "abc").description
                == "record 'abc' not found in collection 'posts'")
        #expect(StoreError.versionConflict(collection: "posts", id: "abc").description.contains("changed"))
        #expect(StoreError.invalidCollectionName("Bad").description.hasPrefix("invalid collection name 'Bad'"))
        #expect(StoreError.invalidCollectionName("").description.contains("empty"))
        #expect(StoreError.database("disk I/O error").description == "database error: disk I/O error")
    }
}
