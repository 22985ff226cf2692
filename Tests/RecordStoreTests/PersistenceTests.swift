import Foundation
import class GRDB.DatabaseQueue
import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

@Suite("File-backed store")
struct PersistenceTests {
    /// A database file in `directory` as an older version left it: migrated up to `migration`,
    /// with one collection.
    func database(in directory: String, upTo migration: String, collection: String, created: String) throws -> DatabaseQueue {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: directory + "/" + SQLiteStore.databaseFileName)
        try Schema.migrator.migrate(queue, upTo: migration)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO collections (name, created) VALUES (?, ?)", arguments: [collection, created])
        }
        return queue
    }

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
                let queue = try database(in: directory, upTo: "v2: hook outbox", collection: "posts", created: time)
                try await queue.write { db in
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

    /// A file as v4 left it (event rows with text, JSON handler lists and JSON timings) opens
    /// with the same events, deliveries and attempts, and goes on from there.
    @Test func aV4DatabaseOpensWithTheSameDeliveries() async throws {
        try await withTemporaryDirectory { directory in
            let (t0, t1, t2) = ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z")
            let r1v1 = Record(id: "r1", collection: "posts", created: t0, updated: t0, version: 1, fields: ["n": 1])
            let r1v2 = Record(id: "r1", collection: "posts", created: t0, updated: t1, version: 2, fields: ["n": 2])
            let r2 = Record(id: "r2", collection: "posts", created: t0, updated: t0, version: 1, fields: ["gone": true])
            @Sendable func json(_ record: Record) -> String { JSONValue.object(record.json).serializedString() }
            do {
                let queue = try database(in: directory, upTo: "v4: forced redeliveries", collection: "posts", created: t0)
                try await queue.write { db in
                    try db.execute(sql: """
                        INSERT INTO records (collection, id, created, updated, version, data, event) VALUES ('posts', 'r1', ?, ?, 2, ?, 2)
                        """, arguments: [t0, t1, JSONValue.object(r1v2.fields).serializedString()])
                    let insertEvent = """
                        INSERT INTO hook_events (sequence, id, type, collection, record_id, handlers, pending, detached, created,
                                                 finished, succeeded, timestamp, depth, data, old_data)
                        VALUES (?, ?, ?, 'posts', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                    let insertRow = """
                        INSERT INTO hook_deliveries (id, event_sequence, handler, collection, record_id, status, attempts, max_attempts,
                                                     next_attempt_at, last_error, last_started, last_duration_ms, created, updated, redelivered)
                        VALUES (?, ?, ?, 'posts', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                    let insertAttempt = "INSERT INTO hook_attempts (delivery_id, attempt, succeeded, started, duration_ms, error) VALUES (?, ?, 0, ?, ?, ?)"
                    let handlers = #"[["a",1],["b",3],["c",2]]"#
                    // Event 1, r1's create (its data copied when r1 changed): a succeeded, b failed, c pending.
                    try db.execute(sql: insertEvent, arguments: [1, "evt_abcdefgh00000001", "record.created", "r1", handlers, 4, 2, t0, t1,
                                                                 #"{"0":["2026-01-01T00:00:00.500Z",1.5]}"#, t0, 0, json(r1v1), nil])
                    try db.execute(sql: insertRow, arguments: [1001, 1, "b", "r1", "failed", 1, 3, 42, "boom", nil, nil, t0, t1, 0])
                    try db.execute(sql: insertAttempt, arguments: [1001, 1, t1, 2.25, "boom"])
                    // Event 2, r1's update (r1 is still that version), by a handler: all pending.
                    try db.execute(sql: insertEvent, arguments: [2, "ev-custom", "record.updated", "r1", handlers, 7, 0, t1, nil, nil, t1, 1,
                                                                 nil, json(r1v1)])
                    // Event 3, r2's delete: a dead, b succeeded at its second attempt after a forced retry.
                    try db.execute(sql: insertEvent, arguments: [3, "evt_abcdefgh0000000z", "record.deleted", "r2", #"[["a",1],["b",3]]"#,
                                                                 0, 3, t1, nil, nil, t2, 0, nil, json(r2)])
                    try db.execute(sql: insertRow, arguments: [3000, 3, "a", "r2", "dead", 1, 1, nil, "x", nil, nil, t1, t2, 0])
                    try db.execute(sql: insertRow, arguments: [3001, 3, "b", "r2", "succeeded", 2, 3, nil, nil, t2, 0.5, t1, t2, 1])
                    try db.execute(sql: insertAttempt, arguments: [3000, 1, t1, 1.0, "x"])
                    try db.execute(sql: insertAttempt, arguments: [3001, 1, t1, 1.0, "y"])
                }
            }
            let store = try SQLiteStore(directory: directory)
            func delivery(_ id: Int64, _ eventID: String, _ handler: String, _ recordID: String, _ status: DeliveryStatus, attempts: Int,
                          max: Int, next: Int64? = nil, error: String? = nil, created: String, updated: String,
                          redelivered: Bool = false) -> Delivery {
                Delivery(id: id, eventSequence: id / 1000, eventID: eventID, handler: handler, collection: "posts", recordID: recordID,
                         status: status, attempts: attempts, maxAttempts: max, nextAttemptAt: next, lastError: error, created: created,
                         updated: updated, redelivered: redelivered)
            }
            let expected = [
                delivery(1000, "evt_abcdefgh00000001", "a", "r1", .succeeded, attempts: 1, max: 1, created: t0, updated: t1),
                delivery(1001, "evt_abcdefgh00000001", "b", "r1", .failed, attempts: 1, max: 3, next: 42, error: "boom", created: t0, updated: t1),
                delivery(1002, "evt_abcdefgh00000001", "c", "r1", .pending, attempts: 0, max: 2, created: t0, updated: t0),
                delivery(2000, "ev-custom", "a", "r1", .pending, attempts: 0, max: 1, created: t1, updated: t1),
                delivery(2001, "ev-custom", "b", "r1", .pending, attempts: 0, max: 3, created: t1, updated: t1),
                delivery(2002, "ev-custom", "c", "r1", .pending, attempts: 0, max: 2, created: t1, updated: t1),
                delivery(3000, "evt_abcdefgh0000000z", "a", "r2", .dead, attempts: 1, max: 1, error: "x", created: t1, updated: t2),
                delivery(3001, "evt_abcdefgh0000000z", "b", "r2", .succeeded, attempts: 2, max: 3, created: t1, updated: t2, redelivered: true),
            ]
            #expect(try await store.deliveries(DeliveryFilter(limit: 1000)) == expected.reversed())
            for delivery in expected { #expect(try await store.delivery(id: delivery.id) == delivery) }
            let unfinished = try await store.unfinishedDeliveries()
            #expect(unfinished.map(\.delivery) == [expected[1], expected[2], expected[3], expected[4], expected[5]])
            let events = [
                OutboxEvent(sequence: 1, event: RecordEvent(id: "evt_abcdefgh00000001", type: .created, collection: "posts", recordID: "r1",
                                                             data: r1v1.json, timestamp: t0)),
                OutboxEvent(sequence: 2, event: RecordEvent(id: "ev-custom", type: .updated, collection: "posts", recordID: "r1",
                                                             data: r1v2.json, oldData: r1v1.json, timestamp: t1, depth: 1)),
                OutboxEvent(sequence: 3, event: RecordEvent(id: "evt_abcdefgh0000000z", type: .deleted, collection: "posts", recordID: "r2",
                                                             data: r2.json, oldData: r2.json, timestamp: t2)),
            ]
            #expect(unfinished.map(\.event) == [events[0], events[0], events[1], events[1], events[1]])
            for event in events { #expect(try await store.event(sequence: event.sequence) == event) }
            func attempts(_ id: Int64) async throws -> [String] {
                try await store.attempts(deliveryID: id).map { "\($0.attempt) \($0.succeeded) \($0.started) \($0.durationMilliseconds) \($0.error ?? "-")" }
            }
            #expect(try await attempts(1000) == ["1 true 2026-01-01T00:00:00.500Z 1.5 -"])
            #expect(try await attempts(1001) == ["1 false \(t1) 2.25 boom"])
            #expect(try await attempts(1002).isEmpty)
            #expect(try await attempts(3000) == ["1 false \(t1) 1.0 x"])
            #expect(try await attempts(3001) == ["1 false \(t1) 1.0 y", "2 true \(t2) 0.5 -"])

            // It goes on from there: r1 changes, and event 2 keeps the version it carries; a retry
            // of the failed delivery is refused while a newer one reached its handler.
            _ = try await store.replace(collection: "posts", id: "r1", fields: ["n": 3], ifVersion: 2).record
            #expect(try await store.event(sequence: 2) == events[1])
            try await store.recordAttempts([AttemptOutcome(deliveryID: 2001, attempt: 1, started: t2, durationMilliseconds: 1,
                                                           error: nil, status: .succeeded, nextAttemptAt: nil)])
            try await store.recordAttempts([AttemptOutcome(deliveryID: 1001, attempt: 2, started: t2, durationMilliseconds: 1,
                                                           error: "again", status: .dead, nextAttemptAt: nil)])
            #expect(await storeError { try await store.requeue(deliveryID: 1001, force: false) } == .staleRedelivery(id: 1001, newer: 2001))
            let next = try await store.insert(Record.new(collection: "posts", fields: [:]),
                                              outbox: OutboxRequest(eventID: "ev4", targets: [DeliveryTarget(handler: "b", maxAttempts: 3)]))
            #expect(try #require(next.event).sequence == 4)
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
            // The checkpointer is the store's upkeep, which the server runs as a service.
            #expect(store.upkeep.count == 1)
            let upkeep = Task { try await withThrowingDiscardingTaskGroup { group in
                for service in store.upkeep { group.addTask { try await service.run() } }
            } }
            defer { upkeep.cancel() }
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

    /// A full disk (SQLite's `max_page_count` stands in for one): writes are refused as
    /// `unavailable` (503 over HTTP) with nothing half-written, reads go on, and writes succeed
    /// again once there is room.
    @Test func aFullDiskRefusesWritesKeepsReadsAndRecovers() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            _ = try await store.createCollection(name: "posts")
            let kept = try await insert(store, "posts", ["n": 0])
            let pages = try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
            _ = try await store.writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(pages)") }
            var refusal: StoreError?
            for n in 1...200 where refusal == nil {
                do throws(StoreError) {
                    _ = try await store.insert(Record.new(collection: "posts", fields: ["n": .int(Int64(n)), "text": .string(String(repeating: "x", count: 2000))]),
                                               outbox: OutboxRequest(eventID: "ev\(n)", targets: [DeliveryTarget(handler: "h", maxAttempts: 1)]))
                } catch {
                    refusal = error
                }
            }
            guard case .unavailable(let message)? = refusal else { Issue.record("no refusal: \(String(describing: refusal))"); return }
            #expect(message.contains("full"), "\(message)")
            let page = try await store.list(collection: "posts", page: 1, perPage: 500, sort: .default)
            #expect(try await store.record(collection: "posts", id: kept.id) == kept, "reads go on")
            let events = try await store.unfinishedDeliveries().count
            #expect(events == page.totalItems - 1, "every stored record has its event, none without its record")
            _ = try await store.writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA max_page_count = 1073741823") }
            _ = try await insert(store, "posts", ["n": 1000])
            #expect(try await store.list(collection: "posts", page: 1, perPage: 1, sort: .default).totalItems == page.totalItems + 1)
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
