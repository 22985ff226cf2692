import Foundation
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

/// A fresh directory under the system's temporary folder, removed after `body`.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("recordstore-tests-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// An in-memory store that already has the named collections.
func makeStore(collections: [String] = ["posts"]) async throws -> SQLiteStore {
    let store = try SQLiteStore.inMemory()
    for name in collections {
        _ = try await store.createCollection(name: name)
    }
    return store
}

/// Creates and stores a record with the given fields.
@discardableResult
func insert(_ store: SQLiteStore, _ collection: String = "posts", _ fields: JSONObject) async throws -> Record {
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
