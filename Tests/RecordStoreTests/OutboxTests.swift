import Foundation
import Testing
import MoonbaseJSON
import MoonbaseModel
import Synchronization
import class GRDB.Row
@testable import RecordStore

/// An outbox request with fresh event id and the given handlers.
func outbox(_ handlers: [String] = ["h1"], maxAttempts: Int = 1, id: String = UUID().uuidString) -> OutboxRequest {
    OutboxRequest(eventID: id, targets: handlers.map { DeliveryTarget(handler: $0, maxAttempts: maxAttempts) })
}

/// Inserts a record with an event delivered to `handlers`; returns its deliveries.
@discardableResult
func insertWithEvent(_ store: any RecordStore, _ collection: String = "posts", _ fields: JSONObject = ["n": 1],
                     handlers: [String] = ["h1"], maxAttempts: Int = 1) async throws -> (record: Record, event: OutboxEvent, deliveries: [Delivery]) {
    let written = try await store.insert(Record.new(collection: collection, fields: fields),
                                   outbox: outbox(handlers, maxAttempts: maxAttempts))
    return (written.record, try #require(written.event), Array(written.deliveries))
}

@Suite("Outbox: writes record their event")
struct OutboxWriteTests {
    @Test(arguments: Engine.allCases) func theDepthOfAHookMadeWriteIsKeptWithItsEvent(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let request = OutboxRequest(eventID: "ev-deep", targets: [DeliveryTarget(handler: "h", maxAttempts: 1)], depth: 2)
        let written = try await store.insert(Record.new(collection: "posts", fields: [:]), outbox: request)
        let event = try #require(written.event)
        #expect(event.depth == 2)
        #expect(try await store.event(sequence: event.sequence).depth == 2)
        #expect(try await store.unfinishedDeliveries().map(\.event.depth) == [2], "start-up takes it up with its depth")
    }

    @Test(arguments: Engine.allCases) func insertRecordsCreatedEventAndOnePendingDeliveryPerTarget(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let request = OutboxRequest(eventID: "ev-1", targets: [
            DeliveryTarget(handler: "a.lua:notify", maxAttempts: 3), DeliveryTarget(handler: "b.lua:index", maxAttempts: 0),
        ])
        let written = try await store.insert(Record.new(collection: "posts", fields: ["title": "hello", "n": 2]), outbox: request)
        let record = written.record
        #expect(try await store.record(collection: "posts", id: record.id) == record)

        let event = try #require(written.event)
        #expect(event.id == "ev-1")
        #expect(event.type == .created)
        #expect(event.collection == "posts" && event.recordID == record.id)
        #expect(event.data == record.json)
        #expect(event.data.keys == ["id", "collection", "created", "updated", "title", "n"])
        #expect(event.oldData == nil)
        #expect(event.timestamp == record.updated)
        #expect(try await store.event(sequence: event.sequence) == event)

        #expect(written.deliveries.count == 2)
        #expect(written.deliveries.map(\.handler) == ["a.lua:notify", "b.lua:index"])
        #expect(written.deliveries.map(\.maxAttempts) == [3, 1])  // below 1 counts as 1
        for delivery in written.deliveries {
            #expect(delivery.status == .pending && delivery.attempts == 0)
            #expect(delivery.eventSequence == event.sequence && delivery.eventID == "ev-1")
            #expect(delivery.collection == "posts" && delivery.recordID == record.id)
            #expect(delivery.nextAttemptAt == nil && delivery.lastError == nil)
            #expect(delivery.created == delivery.updated)
            #expect(try await store.delivery(id: delivery.id) == delivery)
        }
        #expect(written.deliveries.map(\.id) == [event.sequence * 1000, event.sequence * 1000 + 1])
        try expectSQLiteRows(store, (1, 0, 0), "the deliveries live in the event's row")
    }

    @Test(arguments: Engine.allCases) func replaceRecordsUpdatedEventWithOldData(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let created = try await insertWithEvent(store, "posts", ["title": "v1"])
        let written = try await store.replace(collection: "posts", id: created.record.id, fields: ["title": "v2", "extra": true],
                                        ifVersion: 1, outbox: outbox(["h1", "h2"], id: "ev-update"))
        #expect(written.record.version == 2 && written.record.fields["title"] == "v2")
        #expect(try await store.record(collection: "posts", id: created.record.id) == written.record)

        let event = try #require(written.event)
        #expect(event.type == .updated && event.id == "ev-update")
        #expect(event.data == written.record.json)
        #expect(event.oldData == created.record.json)
        #expect(event.timestamp == written.record.updated)
        #expect(event.sequence > created.event.sequence)
        #expect(try await store.event(sequence: event.sequence) == event)
        #expect(written.deliveries.map(\.handler) == ["h1", "h2"])
        #expect(written.deliveries.allSatisfy { $0.status == .pending && $0.eventSequence == event.sequence })
    }

    @Test(arguments: Engine.allCases) func deleteRecordsDeletedEventWithTheRecordAsItWas(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let created = try await insertWithEvent(store, "posts", ["title": "bye", "tags": ["a", "b"]])
        let before = Timestamp.now()
        let written = try await store.delete(collection: "posts", id: created.record.id, ifVersion: 1, outbox: outbox(id: "ev-del"))
        #expect(written.record == created.record)
        #expect(await storeError { try await store.record(collection: "posts", id: created.record.id) }
                == .recordNotFound(collection: "posts", id: created.record.id))

        let event = try #require(written.event)
        #expect(event.type == .deleted)
        #expect(event.data == created.record.json && event.oldData == created.record.json)
        #expect(event.timestamp >= before && event.timestamp.count == 24)
        #expect(try await store.event(sequence: event.sequence) == event)
        #expect(written.deliveries.count == 1 && written.deliveries[0].recordID == created.record.id)
    }

    @Test(arguments: Engine.allCases) func sequencesFollowCommitOrder(engine: Engine) async throws {
        let store = try await makeStore(engine)
        var sequences: [Int64] = []
        let a = try await insertWithEvent(store)
        sequences.append(a.event.sequence)
        let b = try await store.replace(collection: "posts", id: a.record.id, fields: ["n": 2], ifVersion: 1, outbox: outbox())
        sequences.append(try #require(b.event).sequence)
        let c = try await store.insert(Record.new(collection: "posts", fields: [:]), outbox: outbox())
        sequences.append(try #require(c.event).sequence)
        let d = try await store.delete(collection: "posts", id: a.record.id, ifVersion: 2, outbox: outbox())
        sequences.append(try #require(d.event).sequence)
        #expect(sequences == sequences.sorted() && Set(sequences).count == 4)
        #expect(try await store.unfinishedDeliveries().map(\.event.sequence) == sequences)
    }

    @Test(arguments: Engine.allCases) func refusedWritesRecordNoEvent(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let existing = try await insertWithEvent(store)
        let id = existing.record.id
        try expectSQLiteRows(store, (1, 0, 0))

        // Version conflicts, on replace and delete.
        #expect(await storeError { try await store.replace(collection: "posts", id: id, fields: ["n": 9], ifVersion: 7, outbox: outbox()) }
                == .versionConflict(collection: "posts", id: id))
        #expect(await storeError { try await store.delete(collection: "posts", id: id, ifVersion: 7, outbox: outbox()) }
                == .versionConflict(collection: "posts", id: id))
        // Unknown collection and unknown record.
        #expect(await storeError { try await store.insert(Record.new(collection: "nope", fields: [:]), outbox: outbox()) }
                == .collectionNotFound("nope"))
        #expect(await storeError { try await store.replace(collection: "posts", id: "missing", fields: [:], ifVersion: 1, outbox: outbox()) }
                == .recordNotFound(collection: "posts", id: "missing"))
        #expect(await storeError { try await store.delete(collection: "posts", id: "missing", ifVersion: 1, outbox: outbox()) }
                == .recordNotFound(collection: "posts", id: "missing"))
        // A taken record id.
        let clash = Record(id: id, collection: "posts", created: Timestamp.now(), updated: Timestamp.now(), version: 1, fields: [:])
        if case .database? = await storeError({ try await store.insert(clash, outbox: outbox()) }) {} else {
            Issue.record("a taken id must be refused")
        }

        try expectSQLiteRows(store, (1, 0, 0))
        #expect(try await store.record(collection: "posts", id: id) == existing.record)
        #expect(try await store.list(collection: "posts", page: 1, perPage: 10, sort: .default).totalItems == 1)
        // Refusals may leave gaps in the sequence, never reuse or disorder.
        let next = try await insertWithEvent(store)
        #expect(next.event.sequence > existing.event.sequence)
        #expect(try await store.unfinishedDeliveries().map(\.event.sequence) == [existing.event.sequence, next.event.sequence])
    }

    @Test func rolledBackTransactionTakesTheEventWithIt() async throws {
        struct Boom: Error {}
        let store = try await makeSQLiteStore()
        let record = Record.new(collection: "posts", fields: ["n": 1])
        let operation = try store.insertOperation(record, outbox: outbox(["h1", "h2"]))
        // The record, its event and its deliveries are written, then the transaction fails.
        let error = await storeError {
            try await store.batcher.perform { db -> Int in
                let written = try operation(db)
                #expect(written.event != nil && written.deliveries.count == 2)
                throw Boom()
            }
        }
        #expect(error != nil)
        #expect(await storeError { try await store.record(collection: "posts", id: record.id) } == .recordNotFound(collection: "posts", id: record.id))
        try expectSQLiteRows(store, (0, 0, 0))
        // The handler set it stored went with it: the id it had is another set's now, and the
        // store did not remember it for the first.
        let other = try await insertWithEvent(store, handlers: ["x"])
        let again = try await insertWithEvent(store, handlers: ["h1", "h2"])
        #expect(try await store.delivery(id: other.deliveries[0].id).handler == "x")
        #expect(try await store.unfinishedDeliveries().map(\.delivery.handler) == ["x", "h1", "h2"])
        #expect(again.deliveries.map(\.handler) == ["h1", "h2"])
    }

    @Test func anEventRowHoldsIntegersForWhatTheServerMade() async throws {
        let store = try await makeSQLiteStore()
        let targets = DeliveryTargets([DeliveryTarget(handler: "a.lua:notify:record.created:posts", maxAttempts: 3)])
        var written: [WriteResult] = []
        for _ in 0..<3 {
            written.append(try await store.insert(Record.new(collection: "posts", fields: ["n": 1]),
                                                  outbox: OutboxRequest(eventID: EventID.make(), targets: targets)))
        }
        let stored = try store.writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT typeof(prefix), typeof(id), typeof(type), typeof(record), typeof(handlers), typeof(created),
                       typeof(timestamp), data IS NULL, (SELECT count(*) FROM hook_handler_sets),
                       (SELECT count(*) FROM hook_event_id_prefixes)
                FROM hook_events
                """)
        }
        #expect(stored.count == 3)
        for row in stored {
            #expect((0..<7).map { row[$0] as String } == Array(repeating: "integer", count: 7))
            #expect(row[7] as Bool && row[8] as Int == 1 && row[9] as Int == 1)
        }
        for result in written {
            let event = try #require(result.event)
            #expect(try await store.event(sequence: event.sequence) == event)
            #expect(try await store.delivery(id: result.deliveries[0].id) == result.deliveries[0])
        }
    }

    @Test(arguments: Engine.allCases) func valuesTheServerDidNotMakeAreKeptAsGiven(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let record = Record(id: "r", collection: "posts", created: "yesterday", updated: "yesterday", version: 1, fields: [:])
        let written = try await store.insert(record, outbox: outbox(["h", "k"], id: "evt_not-one-of-ours"))
        let event = try #require(written.event)
        #expect(event.timestamp == "yesterday" && event.id == "evt_not-one-of-ours")
        #expect(try await store.event(sequence: event.sequence) == event)
        // A success whose start is no timestamp keeps it on a row of its own; the other stays in the event's row.
        let (h, k) = (written.deliveries[0], written.deliveries[1])
        try await store.recordAttempts([
            AttemptOutcome(deliveryID: h.id, attempt: 1, started: "just now", durationMilliseconds: 2, error: nil, status: .succeeded,
                           nextAttemptAt: nil),
            outcome(k, attempt: 1),
        ])
        try expectSQLiteRows(store, (1, 1, 0))
        #expect(try await store.attempts(deliveryID: h.id).map { [$0.started, "\($0.durationMilliseconds)"] } == [["just now", "2.0"]])
        #expect(try await store.deliveries(DeliveryFilter(status: .succeeded)).map(\.id) == [k.id, h.id])
        #expect(try await store.unfinishedDeliveries().isEmpty)
    }

    @Test(arguments: Engine.allCases) func noOutboxOrNoTargetsWritesNothingMore(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let plain = try await store.insert(Record.new(collection: "posts", fields: ["n": 1]), outbox: nil)
        #expect(plain.event == nil && plain.deliveries.isEmpty)
        let empty = try await store.insert(Record.new(collection: "posts", fields: ["n": 2]),
                                     outbox: OutboxRequest(eventID: "unused", targets: []))
        #expect(empty.event == nil && empty.deliveries.isEmpty)
        let replaced = try await store.replace(collection: "posts", id: plain.record.id, fields: ["n": 3], ifVersion: 1,
                                         outbox: OutboxRequest(eventID: "unused", targets: []))
        #expect(replaced.event == nil && replaced.record.version == 2)
        let deleted = try await store.delete(collection: "posts", id: empty.record.id, ifVersion: 1, outbox: nil)
        #expect(deleted.event == nil && deleted.record == empty.record)
        // The old API is unchanged.
        let old = try await store.insert(Record.new(collection: "posts", fields: [:])).record
        _ = try await store.replace(collection: "posts", id: old.id, fields: ["x": 1], ifVersion: 1).record
        _ = try await store.delete(collection: "posts", id: old.id, ifVersion: 2).record
        try expectSQLiteRows(store, (0, 0, 0))
        // "unused" really was not used.
        _ = try await store.insert(Record.new(collection: "posts", fields: [:]), outbox: outbox(id: "unused"))
    }

    @Test(arguments: Engine.allCases) func concurrentWritesEachRecordOneEventAndThreeDeliveries(engine: Engine) async throws {
        try await withTemporaryDirectory { directory in
            let store: any RecordStore = engine == .sqlite ? try SQLiteStore(directory: directory) : try await makeStore(engine, collections: [])
            _ = try await store.createCollection(name: "posts")
            let n = 300
            let before = try writeStatistics(store)
            let results = try await withThrowingTaskGroup(of: WriteResult.self) { group in
                for i in 0..<n {
                    group.addTask {
                        let record = Record.new(collection: "posts", fields: ["n": .int(Int64(i))])
                        let request = outbox(["a", "b", "c"], id: "event-\(i)")
                        return try await store.insert(record, outbox: request)
                    }
                }
                var all: [WriteResult] = []
                for try await result in group { all.append(result) }
                return all
            }
            let after = try writeStatistics(store)
            #expect(after.writes - before.writes == n)
            #expect(after.transactions - before.transactions < n)  // group commit still works

            #expect(results.count == n)
            let events = results.compactMap(\.event)
            #expect(events.count == n)
            #expect(Set(events.map(\.sequence)).count == n)
            #expect(Set(events.map(\.id)) == Set((0..<n).map { "event-\($0)" }))
            #expect(results.allSatisfy { $0.deliveries.map(\.handler) == ["a", "b", "c"] })
            #expect(Set(results.flatMap(\.deliveries).map(\.id)).count == 3 * n)
            try expectSQLiteRows(store, (n, 0, 0))

            // Commit order: the deliveries of one event come together, events by sequence.
            let unfinished = try await store.unfinishedDeliveries()
            #expect(unfinished.count == 3 * n)
            #expect(unfinished.map(\.event.sequence) == unfinished.map(\.event.sequence).sorted())
            #expect(unfinished.map(\.delivery.id) == unfinished.map(\.delivery.id).sorted())
            for (delivery, event) in unfinished {
                #expect(delivery.eventSequence == event.sequence && delivery.eventID == event.id)
                #expect(event.data["id"] == .string(delivery.recordID))
            }
        }
    }

    @Test(arguments: Engine.allCases) func refusedWriteInABatchDoesNotSpoilTheOthersEvents(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let existing = try await insertWithEvent(store)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<100 {
                group.addTask {
                    // Every third write reuses the existing record's id.
                    let record = i % 3 == 0
                        ? Record(id: existing.record.id, collection: "posts", created: existing.record.created,
                                 updated: existing.record.updated, version: 1, fields: [:])
                        : Record.new(collection: "posts", fields: ["n": .int(Int64(i))])
                    do {
                        _ = try await store.insert(record, outbox: outbox())
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var stored = 0
            for await ok in group where ok { stored += 1 }
            return stored
        }
        #expect(outcomes == 66)
        try expectSQLiteRows(store, (67, 0, 0))
        #expect(try await store.list(collection: "posts", page: 1, perPage: 500, sort: .default).totalItems == 67)
    }

    @Test(arguments: Engine.allCases) func deletingACollectionKeepsItsEvents(engine: Engine) async throws {
        let store = try await makeSQLiteStore(collections: ["posts", "notes"])
        let post = try await insertWithEvent(store, "posts", ["n": 1], handlers: ["h1", "h2"])
        let deleted = try await store.delete(collection: "posts", id: post.record.id, ifVersion: 1, outbox: outbox())
        try await insertWithEvent(store, "notes")
        try await store.deleteCollection(name: "posts")

        try expectSQLiteRows(store, (3, 0, 0))
        #expect(try await store.event(sequence: post.event.sequence) == post.event)
        #expect(try await store.event(sequence: try #require(deleted.event).sequence) == deleted.event)
        #expect(try await store.deliveries(DeliveryFilter(collection: "posts")).count == 3)
        #expect(try await store.unfinishedDeliveries().filter { $0.event.collection == "posts" }.count == 3)
    }

    @Test(arguments: Engine.allCases) func anEventKeepsTheVersionItCarriesWhenItsRecordChangesLater(engine: Engine) async throws {
        let store = try await makeSQLiteStore(collections: ["posts", "notes"])
        // The stored event refers to its record until the record changes: each later write,
        // with an event or without, and deleting the collection, must leave it its own version.
        let created = try await insertWithEvent(store, "posts", ["title": "v1", "n": .null])
        let updated = try await store.replace(collection: "posts", id: created.record.id, fields: ["title": "v2"], ifVersion: 1,
                                        outbox: outbox(id: "ev-v2"))
        let updatedEvent = try #require(updated.event)
        #expect(try await store.event(sequence: created.event.sequence) == created.event)
        #expect(try await store.event(sequence: updatedEvent.sequence) == updatedEvent)
        _ = try await store.replace(collection: "posts", id: created.record.id, fields: ["title": "v3"], ifVersion: 2).record
        #expect(try await store.event(sequence: updatedEvent.sequence).data["title"] == "v2")
        #expect(try await store.event(sequence: created.event.sequence).data == created.record.json)

        let empty = try await insertWithEvent(store, "posts", [:])
        let note = try await insertWithEvent(store, "notes", ["body": "kept"])
        _ = try await store.delete(collection: "notes", id: note.record.id, ifVersion: 1).record
        try await store.deleteCollection(name: "posts")
        #expect(try await store.event(sequence: empty.event.sequence) == empty.event)
        #expect(try await store.event(sequence: note.event.sequence) == note.event)
        let unfinished = try await store.unfinishedDeliveries().map(\.event)
        #expect(unfinished.map(\.data) == [created.record.json, updatedEvent.data, empty.record.json, note.record.json])
    }

    @Test(arguments: Engine.allCases) func targetsPastTheEventRowsSixtyFourHaveRowsFromTheStart(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let handlers = (0..<70).map { "h\($0)" }
        let written = try await insertWithEvent(store, handlers: handlers, maxAttempts: 2)
        try expectSQLiteRows(store, (1, 6, 0))
        #expect(try await store.unfinishedDeliveries().map(\.delivery) == written.deliveries)
        #expect(try await store.deliveries(DeliveryFilter(limit: 1000)) == Array(written.deliveries.reversed()))
        // First attempts: the one past 64 fails, the others succeed, in and out of the event's row.
        let failing = written.deliveries[65]
        try await store.recordAttempts(written.deliveries.map { $0 == failing ? outcome($0, attempt: 1, error: "e", next: 7) : outcome($0, attempt: 1) })
        #expect(try await store.unfinishedDeliveries().map(\.delivery.id) == [failing.id])
        #expect(try await store.deliveries(DeliveryFilter(status: .succeeded, limit: 1000)).count == 69)
        #expect(try await store.delivery(id: written.deliveries[69].id).status == .succeeded)
        #expect(try await store.attempts(deliveryID: failing.id).map(\.error) == ["e"])
        try expectSQLiteRows(store, (1, 6, 1))

        let tooMany = OutboxRequest(eventID: "e", targets: (0...1000).map { DeliveryTarget(handler: "h\($0)", maxAttempts: 1) })
        #expect(await storeError { try await store.insert(Record.new(collection: "posts", fields: [:]), outbox: tooMany) }
                == .database("an event can have at most 1000 deliveries, not 1001"))
        try expectSQLiteRows(store, (1, 6, 1))
    }

    @Test(arguments: Engine.allCases) func unknownEventIsADatabaseError(engine: Engine) async throws {
        let store = try await makeStore(engine)
        #expect(await storeError { try await store.event(sequence: 42) } == .database("event 42 not found"))
    }
}

@Suite struct CommittedEventsTests {
    @Test(arguments: Engine.allCases) func committedEventsAreAnnouncedOnceEachInCommitOrder(engine: Engine) async throws {
        let sink = RecordingSink()
        let store = try await makeStore(engine, events: sink)
        let refused = Record(id: "x", collection: "nope", created: Timestamp.now(), updated: Timestamp.now(), version: 1, fields: [:])
        var existing: [Record] = []
        for i in 0..<20 { existing.append(try await insert(store, "posts", ["n": .int(Int64(i))])) }
        let updated = existing
        // Inserts, refused inserts and updates share transactions (on PostgreSQL the inserts one
        // statement, before the rest).
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let request = OutboxRequest(eventID: "e\(i)", targets: [DeliveryTarget(handler: "h", maxAttempts: 1)])
                    if i % 10 == 5 {
                        _ = try? await store.replace(collection: "posts", id: updated[i / 10].id, fields: ["n": -1], ifVersion: 1, outbox: request)
                        return
                    }
                    let record = i % 10 == 0 ? refused : Record.new(collection: "posts", fields: ["n": .int(Int64(i))])
                    _ = try? await store.insert(record, outbox: request)
                }
            }
        }
        let sequences = sink.seen.withLock { $0 }
        #expect(sequences.count == 180, "refused writes announce nothing")
        #expect(sequences == sequences.sorted() && Set(sequences).count == 180)
    }
}

/// Keeps the sequence of every committed event, checking each arrives with its deliveries.
private final class RecordingSink: CommittedEventSink {
    let seen = Mutex<[Int64]>([])

    func committed(_ event: OutboxEvent, _ deliveries: NewDeliveries) {
        #expect(deliveries.count == 1 && deliveries[0].eventSequence == event.sequence)
        seen.withLock { $0.append(event.sequence) }
    }
}
