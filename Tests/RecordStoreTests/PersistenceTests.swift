import Foundation
import class GRDB.DatabaseQueue
import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

@Suite("File-backed store")
struct PersistenceTests {
    @Test func reopenedStoreKeepsItsData() async throws {
        try await withTemporaryDirectory { root in
            let directory = root + "/nested/data"  // missing folders are created
            let kept: Record
            do {
                let store = try SQLiteStore(directory: directory)
                _ = try await store.createCollection(name: "posts")
                _ = try await store.createCollection(name: "gone")
                kept = try await insert(store, "posts", ["title": .string("persisted"), "n": .array([.int(1), .int(2)])])
                try await store.deleteCollection(name: "gone")
                #expect(FileManager.default.fileExists(atPath: directory + "/moonbase.sqlite"))
                // WAL mode: the write-ahead log sits beside the database while it is open.
                #expect(FileManager.default.fileExists(atPath: directory + "/moonbase.sqlite-wal"))
            }

            // Opening again runs the migrations again, which must be a no-op.
            for _ in 0..<2 {
                let store = try SQLiteStore(directory: directory)
                #expect(try await store.collections().map(\.name) == ["posts"])
                #expect(store.collectionExists("posts") && !store.collectionExists("gone"))
                let fetched = try await store.record(collection: "posts", id: kept.id)
                #expect(fetched == kept)
                #expect(fetched.fields.keys == ["title", "n"])
            }

            let store = try SQLiteStore(directory: directory)
            try await insert(store, "posts", ["title": .string("second")])
            #expect(try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default).totalItems == 2)
        }
    }

    @Test func eventsStoredBeforeEventsReferredToTheirRecordKeepTheirData() async throws {
        try await withTemporaryDirectory { directory in
            // A file as the outbox's first layout left it: the event holds a copy of its record.
            let time = "2026-01-01T00:00:00.000Z"
            let record = Record(id: "r1", collection: "posts", created: time, updated: time, version: 1, fields: ["n": 1])
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let queue = try DatabaseQueue(path: directory + "/" + SQLiteStore.databaseFileName)
                try Schema.migrator.migrate(queue, upTo: "v2: hook outbox")
                try await queue.write { db in
                    try db.execute(sql: "INSERT INTO collections (name, created) VALUES ('posts', ?)", arguments: [time])
                    try db.execute(sql: "INSERT INTO records (collection, id, created, updated, version, data) VALUES ('posts', 'r1', ?, ?, 1, ?)",
                                   arguments: [time, time, JSONValue.object(record.fields).serializedString()])
                    try db.execute(sql: """
                        INSERT INTO hook_events (id, type, collection, record_id, handlers, pending, created, timestamp, data)
                        VALUES ('ev1', 'record.created', 'posts', 'r1', '[["h", 1]]', 1, ?, ?, ?)
                        """, arguments: [time, time, JSONValue.object(record.json).serializedString()])
                }
            }
            let store = try SQLiteStore(directory: directory)
            let event = try await store.event(sequence: 1)
            #expect(event.id == "ev1" && event.data == record.json)
            _ = try await store.replace(collection: "posts", id: "r1", fields: ["n": 2], ifVersion: 1).record
            #expect(try await store.event(sequence: 1) == event)
            #expect(try await store.unfinishedDeliveries().map(\.event) == [event])
            let next = try await store.insert(Record.new(collection: "posts", fields: [:]),
                                        outbox: OutboxRequest(eventID: "ev2", targets: [DeliveryTarget(handler: "h", maxAttempts: 1)]))
            #expect(try #require(next.event).sequence == 2)
        }
    }

    @Test func theWALIsCheckpointedOffTheWriter() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            // The writer would checkpoint only after four times the usual WAL length.
            #expect(try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") } == 40_000)
            _ = try await store.createCollection(name: "posts")
            let file = directory + "/moonbase.sqlite"
            func size() throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) }
            let before = try size()
            for n in 0..<500 { try await insert(store, "posts", ["n": .int(Int64(n)), "text": .string(String(repeating: "x", count: 200))]) }
            // A few thousand WAL frames: far from the writer's checkpoint, so only the checkpointer
            // copies them into the database file, within a few of its ticks.
            var copied = false
            for _ in 0..<50 where !copied {
                try await Task.sleep(for: .milliseconds(20))
                copied = try size() > before + 100_000
            }
            #expect(copied)
        }
    }

    @Test func unusableDirectoryIsADatabaseError() async throws {
        try await withTemporaryDirectory { root in
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let blocker = root + "/file"
            _ = FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
            do {
                _ = try SQLiteStore(directory: blocker + "/data")  // a path through a regular file
                Issue.record("opening should have failed")
            } catch let error as StoreError {
                guard case .database(let message) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(message.contains(blocker))
            }
        }
    }

    @Test func collectionDeletedThroughAnotherConnectionIsNotFound() async throws {
        try await withTemporaryDirectory { directory in
            let first = try SQLiteStore(directory: directory)
            _ = try await first.createCollection(name: "posts")
            let second = try SQLiteStore(directory: directory)
            try await second.deleteCollection(name: "posts")

            // `first` still believes the collection exists; the foreign key catches it.
            #expect(first.collectionExists("posts"))
            #expect(await storeError { try await insert(first, "posts", ["a": .int(1)]) } == .collectionNotFound("posts"))
            #expect(!first.collectionExists("posts"))
            #expect(try await first.collections().isEmpty)
        }
    }
}
