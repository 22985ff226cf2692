import Testing
import MoonbaseJSON
@testable import RecordStore

@Suite("Collections")
struct CollectionTests {
    @Test func createListAndDelete() throws {
        let store = try RecordStore.inMemory()
        #expect(try store.collections().isEmpty)

        let posts = try store.createCollection(name: "posts")
        let authors = try store.createCollection(name: "authors")
        #expect(posts.name == "posts")
        #expect(posts.created.count == 24 && posts.created.hasSuffix("Z"))

        #expect(try store.collections().map(\.name) == ["authors", "posts"])  // by name
        #expect(try store.collections() == [authors, posts])
        #expect(store.collectionExists("posts"))
        #expect(!store.collectionExists("comments"))

        try store.deleteCollection(name: "posts")
        #expect(try store.collections() == [authors])
        #expect(!store.collectionExists("posts"))
        #expect(storeError { try store.deleteCollection(name: "posts") } == .collectionNotFound("posts"))
    }

    @Test(arguments: [
        "Posts", "POSTS", "1posts", "_posts", String(repeating: "a", count: 64), "", "my-posts", "my posts",
        "pösts", "posts.x", "posts/x", "posts'; DROP TABLE records; --",
    ])
    func invalidNamesAreRefused(name: String) throws {
        let store = try RecordStore.inMemory()
        #expect(storeError { try store.createCollection(name: name) } == .invalidCollectionName(name))
        #expect(try store.collections().isEmpty)
    }

    @Test(arguments: ["a", "posts", "a_1", "x9", "snake_case_name", String(repeating: "z", count: 63)])
    func validNamesAreAccepted(name: String) throws {
        let store = try RecordStore.inMemory()
        #expect(try store.createCollection(name: name).name == name)
        #expect(store.collectionExists(name))
    }

    @Test func duplicateNameIsRefused() throws {
        let store = try RecordStore.inMemory()
        let first = try store.createCollection(name: "posts")
        #expect(storeError { try store.createCollection(name: "posts") } == .collectionExists("posts"))
        #expect(try store.collections() == [first])
    }

    @Test func deletingACollectionDeletesItsRecordsOnly() throws {
        let store = try makeStore(collections: ["posts", "comments"])
        for i in 0..<3 { try insert(store, "posts", ["n": .int(Int64(i))]) }
        let comment = try insert(store, "comments", ["text": .string("hi")])

        try store.deleteCollection(name: "posts")
        #expect(storeError { try store.list(collection: "posts", page: 1, perPage: 30, sort: .default) }
                == .collectionNotFound("posts"))

        // Same name again starts empty: no orphan rows survived.
        _ = try store.createCollection(name: "posts")
        let page = try store.list(collection: "posts", page: 1, perPage: 30, sort: .default)
        #expect(page.totalItems == 0 && page.items.isEmpty)

        #expect(try store.record(collection: "comments", id: comment.id) == comment)
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
