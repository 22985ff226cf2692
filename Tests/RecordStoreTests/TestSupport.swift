import Foundation
import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore
import MoonbaseTestSupport

/// The storage engines the store suites run against: `@Test(arguments: Engine.allCases)`.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }
}

/// A fresh directory under the system's temporary folder, removed after `body`.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("recordstore-tests-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A fresh store of `engine` that already has the named collections: SQLite in memory, or a new
/// database of its own on the test PostgreSQL server (see `PostgresTestDatabase`).
func makeStore(_ engine: Engine, collections: [String] = ["posts"],
               events: (any CommittedEventSink)? = nil) async throws -> any RecordStore {
    let store: any RecordStore = switch engine {
    case .sqlite: try SQLiteStore.inMemory(events: events)
    case .postgres: try await PostgresTestDatabase.makeStore(events: events)
    }
    for name in collections {
        _ = try await store.createCollection(name: name)
    }
    return store
}

/// An in-memory SQLite store that already has the named collections, for tests of the SQLite
/// engine's own layout.
func makeSQLiteStore(collections: [String] = ["posts"], events: (any CommittedEventSink)? = nil) async throws -> SQLiteStore {
    let store = try SQLiteStore.inMemory(events: events)
    for name in collections {
        _ = try await store.createCollection(name: name)
    }
    return store
}

/// The SQLite engine's outbox rows (events, delivery rows, attempt rows) must be `expected`;
/// other engines lay the outbox out otherwise, and are not checked.
func expectSQLiteRows(_ store: any RecordStore, _ expected: (Int, Int, Int), _ comment: Comment? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard let sqlite = store as? SQLiteStore else { return }
    let counts = try sqlite.outboxRowCounts()
    #expect(counts == expected, comment, sourceLocation: sourceLocation)
}

/// (transactions, record writes) an engine has committed: writes > transactions means group commit works.
func writeStatistics(_ store: any RecordStore) throws -> (transactions: Int, writes: Int) {
    switch store {
    case let sqlite as SQLiteStore: return sqlite.writeStatistics
    case let postgres as PostgresStore: return postgres.writeStatistics
    default: throw StoreError.database("no write statistics for \(type(of: store))")
    }
}

/// Creates and stores a record with the given fields.
@discardableResult
func insert(_ store: any RecordStore, _ collection: String = "posts", _ fields: JSONObject) async throws -> Record {
    try await store.insert(Record.new(collection: collection, fields: fields)).record
}

/// The error a throwing call fails with, or nil if it succeeds. (Untyped, because `#expect`
/// rewrites the closure's `try`s in a way that loses typed throws.)
func storeError<T>(_ body: () async throws -> T) async -> StoreError? {
    do {
        _ = try await body()
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        return .database("not a StoreError: \(error)")
    }
}

/// Parses bytes that must hold a JSON object.
func parseObject(_ bytes: [UInt8]) throws -> JSONObject {
    guard case .object(let object) = try JSONValue.parse(bytes) else {
        throw StoreError.database("not an object")
    }
    return object
}
