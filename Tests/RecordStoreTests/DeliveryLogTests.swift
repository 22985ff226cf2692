import Foundation
import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore
import MoonbaseTestSupport

/// An outcome of attempt `attempt` of `delivery`: succeeded when `error` is nil.
func outcome(_ delivery: Delivery, attempt: Int, error: String? = nil, status: DeliveryStatus? = nil,
             next: Int64? = nil) -> AttemptOutcome {
    AttemptOutcome(deliveryID: delivery.id, attempt: attempt, started: Timestamp.now(), durationMilliseconds: 1.5,
                   error: error, status: status ?? (error == nil ? .succeeded : .failed), nextAttemptAt: next)
}

/// Sleeps long enough for `Timestamp.now()` (milliseconds) to move on.
func nextMillisecond() {
    usleep(3_000)
}

@Suite("Outbox: deliveries log")
struct DeliveryLogTests {
    @Test(arguments: Engine.allCases) func recordAttemptsUpdatesTheDeliveryAndLogsEveryAttempt(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["h1", "h2"], maxAttempts: 3)
        let (first, second) = (written.deliveries[0], written.deliveries[1])

        let due: Int64 = 1_800_000_000_000
        try await store.recordAttempts([
            outcome(first, attempt: 1, error: "boom at hook.lua:3", next: due),
            outcome(second, attempt: 1),
        ])
        var d1 = try await store.delivery(id: first.id)
        #expect(d1.status == .failed && d1.attempts == 1 && d1.nextAttemptAt == due)
        #expect(d1.lastError == "boom at hook.lua:3")
        #expect(d1.updated >= first.updated && d1.created == first.created)
        let d2 = try await store.delivery(id: second.id)
        #expect(d2.status == .succeeded && d2.attempts == 1 && d2.nextAttemptAt == nil && d2.lastError == nil)

        try await store.recordAttempts([outcome(first, attempt: 2, error: "again", next: due + 1000)])
        try await store.recordAttempts([outcome(first, attempt: 3, error: "last", status: .dead)])
        d1 = try await store.delivery(id: first.id)
        #expect(d1.status == .dead && d1.attempts == 3 && d1.nextAttemptAt == nil && d1.lastError == "last")

        let attempts = try await store.attempts(deliveryID: first.id)
        #expect(attempts.map(\.attempt) == [1, 2, 3])
        #expect(attempts.map(\.error) == ["boom at hook.lua:3", "again", "last"])
        #expect(attempts.allSatisfy {
            !$0.succeeded && $0.deliveryID == first.id && $0.eventID == written.event.id && $0.handler == "h1"
                && $0.durationMilliseconds == 1.5 && $0.started.count == 24
        })
        let ok = try await store.attempts(deliveryID: second.id)
        #expect(ok.count == 1 && ok[0].succeeded && ok[0].error == nil)
    }

    @Test(arguments: Engine.allCases) func recordAttemptsIgnoresUnknownDeliveries(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store)
        let delivery = written.deliveries[0]
        let unknown = AttemptOutcome(deliveryID: 9999, attempt: 1, started: Timestamp.now(), durationMilliseconds: 1,
                                     error: nil, status: .succeeded, nextAttemptAt: nil)
        try await store.recordAttempts([outcome(delivery, attempt: 1), unknown])
        #expect(try await store.delivery(id: delivery.id).status == .succeeded)
        try expectSQLiteRows(store, (1, 0, 0), "a first success stays in the event's row")
        #expect(await storeError { try await store.attempts(deliveryID: 9999) } == .deliveryNotFound(9999))
        #expect(await storeError { try await store.delivery(id: 9999) } == .deliveryNotFound(9999))
        // Nothing to record is not an error.
        try await store.recordAttempts([])
        try await store.recordAttempts([outcome(delivery, attempt: 1)])
        #expect(try await store.delivery(id: delivery.id).status == .succeeded)
        #expect(try await store.attempts(deliveryID: delivery.id).count == 1)
    }

    @Test(arguments: Engine.allCases) func unfinishedDeliveriesAreThePendingAndFailedOnesInCommitOrder(engine: Engine) async throws {
        let store = try await makeStore(engine)
        // Five events with two deliveries each; one of them settled per event, in varied ways.
        var written: [(record: Record, event: OutboxEvent, deliveries: [Delivery])] = []
        for i in 0..<5 {
            written.append(try await insertWithEvent(store, "posts", ["n": .int(Int64(i))], handlers: ["x", "y"], maxAttempts: 5))
        }
        let d = written.map(\.deliveries)
        try await store.recordAttempts([
            outcome(d[0][0], attempt: 1),                                     // succeeded
            outcome(d[1][1], attempt: 1, error: "e", next: 1),                // failed
            outcome(d[2][0], attempt: 1, error: "e", status: .dead),          // dead
        ])
        try expectSQLiteRows(store, (5, 2, 2), "rows only for the failed and the dead one")

        let unfinished = try await store.unfinishedDeliveries()
        let expected = [d[0][1], d[1][0], d[1][1], d[2][1], d[3][0], d[3][1], d[4][0], d[4][1]].map(\.id)
        #expect(unfinished.map(\.delivery.id) == expected)
        #expect(unfinished.map(\.delivery.status) == [.pending, .pending, .failed, .pending, .pending, .pending, .pending, .pending])
        for (delivery, event) in unfinished {
            let source = try #require(written.first { $0.event.sequence == delivery.eventSequence })
            #expect(event == source.event)
        }
        #expect(try await store.unfinishedDeliveries().map(\.delivery.id) == expected)
    }

    @Test(arguments: Engine.allCases) func unfinishedDeliveriesCanBeReadInPartsFromASequenceOn(engine: Engine) async throws {
        let store = try await makeStore(engine)
        var d: [[Delivery]] = []
        for i in 0..<8 {
            d.append(try await insertWithEvent(store, "posts", ["n": .int(Int64(i))], handlers: ["x", "y"], maxAttempts: 5).deliveries)
        }
        try await store.recordAttempts([
            outcome(d[1][1], attempt: 1, error: "e", next: 1),                               // failed: a row of its own
            outcome(d[2][0], attempt: 1, error: "e", status: .dead),                         // dead: finished
            outcome(d[5][0], attempt: 1), outcome(d[5][1], attempt: 1),                      // event 5 all done
            outcome(d[6][0], attempt: 1, error: "e", next: 1), outcome(d[6][1], attempt: 1, error: "e", next: 1), // only rows
        ])
        let whole = try await store.unfinishedDeliveries().map(\.delivery.id)
        var parts: [[Int64]] = []
        var from: Int64? = 0
        while let start = from {
            let (part, next) = try await store.unfinishedDeliveries(from: start, events: 2)
            parts.append(part.map(\.delivery.id))
            #expect(part.allSatisfy { $0.delivery.eventSequence >= start })
            if let next { #expect(next > start && part.allSatisfy { $0.delivery.eventSequence < next }) }
            from = next
        }
        #expect(parts.flatMap { $0 } == whole, "the parts are the whole, in order, nothing twice")
        #expect(parts.count >= 3 && parts.allSatisfy { Set($0.map { $0 / 1000 }).count <= 3 }, "a few events at a time")
        let tail = try await store.unfinishedDeliveries(from: d[6][0].eventSequence, events: 100)
        #expect(tail.deliveries.map(\.delivery.id) == [d[6][0].id, d[6][1].id, d[7][0].id, d[7][1].id] && tail.next == nil)
    }

    @Test(arguments: Engine.allCases) func successesOfOneEventRecordedTogetherEachKeepTheirTiming(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["a", "b", "c"])
        let (a, b, c) = (written.deliveries[0], written.deliveries[1], written.deliveries[2])
        func success(_ delivery: Delivery, _ started: String, _ milliseconds: Double) -> AttemptOutcome {
            AttemptOutcome(deliveryID: delivery.id, attempt: 1, started: started, durationMilliseconds: milliseconds,
                           error: nil, status: .succeeded, nextAttemptAt: nil)
        }
        try await store.recordAttempts([success(c, "2026-01-02T03:04:05.000Z", 2.5), success(a, "2026-01-02T03:04:06.000Z", 0.125)])
        try await store.recordAttempts([success(b, "2026-01-02T03:04:07.000Z", 1e-3)])
        #expect(try await store.attempts(deliveryID: a.id).map { [$0.started, "\($0.durationMilliseconds)"] } == [["2026-01-02T03:04:06.000Z", "0.125"]])
        #expect(try await store.attempts(deliveryID: b.id).map { [$0.started, "\($0.durationMilliseconds)"] } == [["2026-01-02T03:04:07.000Z", "0.001"]])
        #expect(try await store.attempts(deliveryID: c.id).map { [$0.started, "\($0.durationMilliseconds)"] } == [["2026-01-02T03:04:05.000Z", "2.5"]])
        #expect(try await store.unfinishedDeliveries().isEmpty)
    }

    @Test(arguments: [(1234.5678, 1_234_568), (0.0004, 0), (0.0005, 1), (2.5, 2500), (-3, 0), (.nan, 0), (.infinity, 0),
                      (9.9996, 10_000), (1e300, 9_000_000_000_000_000)] as [(Double, Int64)])
    func successTimingsAreKeptToTheMicrosecond(milliseconds: Double, microseconds: Int64) {
        #expect(SuccessTimings.microseconds(milliseconds) == microseconds)
    }

    @Test func successTimingsReadBackAsWritten() throws {
        let created: Int64 = 1_767_225_600_000
        let timings = SuccessTimings([
            .init(started: created + 3, microseconds: 42), .init(started: created + 3, microseconds: 1_500_000),
            .init(started: created - 86_400_000, microseconds: 0), .init(started: .max, microseconds: 9_000_000_000_000_000),
        ])
        let bytes = timings.encoded(created: created)
        #expect(SuccessTimings(bytes, created: created) == timings)
        #expect(SuccessTimings(timings.entries.prefix(2).map { $0 }).encoded(created: created).count == 6,
                "a job's successes, sharing a start, cost a few bytes each")
        #expect(SuccessTimings(Array(bytes.dropLast()), created: created) == nil, "a cut entry is unreadable")
        #expect(SuccessTimings([], created: created) == SuccessTimings())
    }

    @Test(arguments: Engine.allCases) func aFirstSuccessLeavesNoRowAndIsListedAsSucceeded(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["a", "b"], maxAttempts: 3)
        let (a, b) = (written.deliveries[0], written.deliveries[1])
        nextMillisecond()
        try await store.recordAttempts([AttemptOutcome(deliveryID: a.id, attempt: 1, started: "2026-01-02T03:04:05.678Z",
                                                 durationMilliseconds: 0.25, error: nil, status: .succeeded, nextAttemptAt: nil)])
        try expectSQLiteRows(store, (1, 0, 0))

        let succeeded = try await store.delivery(id: a.id)
        #expect(succeeded.status == .succeeded && succeeded.attempts == 1 && succeeded.maxAttempts == 3)
        #expect(succeeded.created == a.created && succeeded.updated > a.updated)
        #expect(succeeded.handler == "a" && succeeded.eventID == written.event.id && succeeded.recordID == written.record.id)
        #expect(try await store.attempts(deliveryID: a.id) == [
            DeliveryAttempt(deliveryID: a.id, eventID: written.event.id, handler: "a", attempt: 1, succeeded: true,
                            started: "2026-01-02T03:04:05.678Z", durationMilliseconds: 0.25, error: nil),
        ])
        #expect(try await store.delivery(id: b.id) == b, "its sibling is still pending")
        #expect(try await store.attempts(deliveryID: b.id).isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(status: .succeeded)) == [succeeded])
        #expect(try await store.deliveries(DeliveryFilter(status: .pending)) == [b])
        #expect(try await store.deliveries(DeliveryFilter()) == [b, succeeded])
        #expect(try await store.unfinishedDeliveries().map(\.delivery) == [b])

        // The sibling succeeds later, in a job of its own: the event has nothing left to do.
        try await store.recordAttempts([outcome(b, attempt: 1)])
        #expect(try await store.unfinishedDeliveries().isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(status: .succeeded)).map(\.id) == [b.id, a.id])
        #expect(try await store.attempts(deliveryID: a.id).map(\.durationMilliseconds) == [0.25], "each keeps its own timing")
        try expectSQLiteRows(store, (1, 0, 0))
        // Ids that the event's row does not have.
        for id in [written.event.sequence * 1000 + 2, written.event.sequence * 1000 + 999, -1] {
            #expect(await storeError { try await store.delivery(id: id) } == .deliveryNotFound(id))
        }
    }

    @Test(arguments: Engine.allCases) func aFailureMovesItsDeliveryToARowOfItsOwn(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["ok", "flaky", "later"], maxAttempts: 2)
        let d = written.deliveries
        try await store.recordAttempts([outcome(d[0], attempt: 1), outcome(d[1], attempt: 1, error: "boom", next: 77)])
        try expectSQLiteRows(store, (1, 1, 1))
        let failed = try await store.delivery(id: d[1].id)
        #expect(failed.status == .failed && failed.attempts == 1 && failed.maxAttempts == 2 && failed.nextAttemptAt == 77)
        #expect(failed.handler == "flaky" && failed.eventID == written.event.id && failed.created == d[1].created)
        #expect(try await store.deliveries(DeliveryFilter()).map(\.status) == [.pending, .failed, .succeeded])
        #expect(try await store.unfinishedDeliveries().map(\.delivery) == [failed, d[2]])

        // Its second attempt succeeds: recorded on its row, which stays.
        try await store.recordAttempts([outcome(d[1], attempt: 2)])
        let retried = try await store.delivery(id: d[1].id)
        #expect(retried.status == .succeeded && retried.attempts == 2 && retried.lastError == nil)
        #expect(try await store.attempts(deliveryID: d[1].id).map(\.succeeded) == [false, true])
        try expectSQLiteRows(store, (1, 1, 1))
        #expect(try await store.unfinishedDeliveries().map(\.delivery.id) == [d[2].id])
        // A first attempt recorded twice, or a second one of a delivery without a row, changes nothing.
        try await store.recordAttempts([outcome(d[1], attempt: 1, error: "again"), outcome(d[2], attempt: 2, error: "x")])
        #expect(try await store.delivery(id: d[1].id) == retried)
        #expect(try await store.delivery(id: d[2].id) == d[2])
        try expectSQLiteRows(store, (1, 1, 1))
    }

    @Test(arguments: Engine.allCases) func requeueRules(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["pending", "succeeded", "failed", "dead"], maxAttempts: 2)
        let d = written.deliveries
        try await store.recordAttempts([
            outcome(d[1], attempt: 1),
            outcome(d[2], attempt: 1, error: "e1", next: 5_000),
            outcome(d[3], attempt: 1, error: "e0", next: 1),
        ])
        try await store.recordAttempts([outcome(d[3], attempt: 2, error: "e2", status: .dead)])

        for (delivery, status) in [(d[0], DeliveryStatus.pending), (d[1], .succeeded)] {
            #expect(await storeError { try await store.requeue(deliveryID: delivery.id, force: false) } == .deliveryNotRetryable(id: delivery.id, status: status))
            #expect(try await store.delivery(id: delivery.id).status == status)
        }
        #expect(StoreError.deliveryNotRetryable(id: 12, status: .running).description
                == "delivery 12 is running; only failed or dead deliveries can be retried")
        #expect(await storeError { try await store.requeue(deliveryID: 777, force: false) } == .deliveryNotFound(777))
        #expect(StoreError.deliveryNotFound(12).description == "delivery 12 not found")

        let failed = try await store.requeue(deliveryID: d[2].id, force: false)
        #expect(failed.status == .pending && failed.nextAttemptAt == nil && failed.attempts == 1)
        #expect(failed.maxAttempts == 2)          // max(2, 1 + 1)
        #expect(failed.lastError == "e1")         // the history stays
        #expect(try await store.delivery(id: d[2].id) == failed)

        let dead = try await store.requeue(deliveryID: d[3].id, force: false)
        #expect(dead.status == .pending && dead.attempts == 2 && dead.maxAttempts == 3)  // one more attempt
        // Pending again: a second requeue is refused.
        #expect(await storeError { try await store.requeue(deliveryID: d[3].id, force: false) } == .deliveryNotRetryable(id: d[3].id, status: .pending))
        #expect(try await store.unfinishedDeliveries().map(\.delivery.id) == [d[0].id, d[2].id, d[3].id])
    }

    /// A dead create must not be sent again over a later update that reached the same handler,
    /// unless forced; the other handler, and the other record, are no reason to refuse.
    @Test(arguments: Engine.allCases) func requeueRefusesStaleDataUnlessForced(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let created = try await insertWithEvent(store, handlers: ["search", "audit"])
        let other = try await insertWithEvent(store, handlers: ["search"])
        try await store.recordAttempts([outcome(created.deliveries[0], attempt: 1, error: "down", status: .dead),
                                        outcome(created.deliveries[1], attempt: 1, error: "down", status: .dead),
                                        outcome(other.deliveries[0], attempt: 1)])
        #expect(try await store.requeue(deliveryID: created.deliveries[1].id, force: false).redelivered == false)

        let update = try await store.replace(collection: "posts", id: created.record.id, fields: ["n": 2], ifVersion: 1,
                                             outbox: outbox(["search", "audit"]))
        let newer = Array(update.deliveries)
        // Still pending: nothing newer has succeeded yet.
        try await store.recordAttempts([outcome(created.deliveries[0], attempt: 1, error: "down", status: .dead)])
        try await store.recordAttempts([outcome(newer[1], attempt: 1)])
        let search = created.deliveries[0]
        #expect(try await store.requeue(deliveryID: search.id, force: false).status == .pending)
        try await store.recordAttempts([outcome(search, attempt: 2, error: "down again", status: .dead)])

        // Once the update reached `search`, a retry of the create would write the old data over it.
        try await store.recordAttempts([outcome(newer[0], attempt: 1)])
        #expect(await storeError { try await store.requeue(deliveryID: search.id, force: false) }
                == .staleRedelivery(id: search.id, newer: newer[0].id))
        #expect(try await store.delivery(id: search.id).status == .dead)
        #expect(StoreError.staleRedelivery(id: 5000, newer: 7000).description.contains("delivery 7000"))

        // The same when the newer success had failed first (a row of its own).
        let third = try await store.replace(collection: "posts", id: created.record.id, fields: ["n": 3], ifVersion: 2,
                                            outbox: outbox(["search"]))
        try await store.recordAttempts([outcome(third.deliveries[0], attempt: 1, error: "once", next: 1)])
        try await store.recordAttempts([outcome(third.deliveries[0], attempt: 2)])
        #expect(await storeError { try await store.requeue(deliveryID: search.id, force: false) }
                == .staleRedelivery(id: search.id, newer: third.deliveries[0].id))

        let forced = try await store.requeue(deliveryID: search.id, force: true)
        #expect(forced.status == .pending && forced.redelivered)
        #expect(try await store.delivery(id: search.id).redelivered)
        #expect(try await store.unfinishedDeliveries().first { $0.delivery.id == search.id }?.delivery.redelivered == true)
    }

    @Test(arguments: Engine.allCases) func purgeDeletesOnlyOldEventsWhoseDeliveriesAllSucceededInBatches(engine: Engine) async throws {
        let store = try await makeStore(engine)
        // Old: 5 events whose deliveries all succeed, 1 that succeeded at its second attempt, and
        // 1 event with one succeeded, one dead delivery.
        var oldSucceeded: [Delivery] = []
        var oldEvents: [OutboxEvent] = []
        for _ in 0..<5 {
            let w = try await insertWithEvent(store)
            oldEvents.append(w.event)
            oldSucceeded += w.deliveries
        }
        let retried = try await insertWithEvent(store, maxAttempts: 2)
        oldEvents.append(retried.event)
        oldSucceeded += retried.deliveries
        try await store.recordAttempts([outcome(retried.deliveries[0], attempt: 1, error: "x", next: 1)])
        try await store.recordAttempts([outcome(retried.deliveries[0], attempt: 2)])
        let mixed = try await insertWithEvent(store, handlers: ["ok", "bad"])
        try await store.recordAttempts(oldSucceeded.dropLast().map { outcome($0, attempt: 1) } + [outcome(mixed.deliveries[0], attempt: 1)])
        try await store.recordAttempts([outcome(mixed.deliveries[1], attempt: 1, error: "x", status: .dead)])
        // Old but unfinished or failed.
        let oldPending = try await insertWithEvent(store).deliveries[0]
        let oldFailed = try await insertWithEvent(store).deliveries[0]
        try await store.recordAttempts([outcome(oldFailed, attempt: 1, error: "x", next: 1)])

        nextMillisecond()
        let cutoff = Timestamp.now()
        nextMillisecond()
        let recent = try await insertWithEvent(store)
        try await store.recordAttempts([outcome(recent.deliveries[0], attempt: 1)])
        try expectSQLiteRows(store, (10, 3, 3), "rows and attempt rows only for the failed attempts")

        #expect(try await store.purgeSucceeded(before: cutoff, batchSize: 4) == 4)
        try expectSQLiteRows(store, (6, 3, 3))
        #expect(try await store.purgeSucceeded(before: cutoff, batchSize: 4) == 2)
        #expect(try await store.purgeSucceeded(before: cutoff, batchSize: 4) == 0)
        #expect(try await store.purgeSucceeded(before: cutoff, batchSize: 0) == 0)

        // Left: the mixed event (its dead delivery keeps it, and its succeeded one), pending, failed, and the recent one.
        try expectSQLiteRows(store, (4, 2, 2))
        for delivery in oldSucceeded {
            #expect(await storeError { try await store.delivery(id: delivery.id) } == .deliveryNotFound(delivery.id))
        }
        for event in oldEvents {
            #expect(await storeError { try await store.event(sequence: event.sequence) } == .database("event \(event.sequence) not found"))
        }
        #expect(try await store.event(sequence: mixed.event.sequence) == mixed.event)
        #expect(try await store.delivery(id: mixed.deliveries[0].id).status == .succeeded)
        #expect(try await store.delivery(id: mixed.deliveries[1].id).status == .dead)
        #expect(try await store.attempts(deliveryID: mixed.deliveries[1].id).count == 1)
        #expect(try await store.delivery(id: oldPending.id).status == .pending)
        #expect(try await store.delivery(id: oldFailed.id).status == .failed)
        #expect(try await store.delivery(id: recent.deliveries[0].id).status == .succeeded)

        // Later, the recent one goes too, once a newer event exists: the newest stays, so that
        // sequences (and delivery ids) are never handed out twice.
        let end = "9999-12-31T23:59:59.999Z"
        #expect(try await store.purgeSucceeded(before: end, batchSize: 100) == 0)
        let newest = try await insertWithEvent(store)
        try await store.recordAttempts([outcome(newest.deliveries[0], attempt: 1)])
        #expect(try await store.purgeSucceeded(before: end, batchSize: 100) == 1)
        try expectSQLiteRows(store, (4, 2, 2))
        #expect(try await insertWithEvent(store).event.sequence > newest.event.sequence)
    }

    @Test(arguments: Engine.allCases) func deliveriesFiltersAndLimit(engine: Engine) async throws {
        let store = try await makeStore(engine, collections: ["posts", "notes"])
        var all: [Delivery] = []
        for i in 0..<6 {
            all += try await insertWithEvent(store, i % 2 == 0 ? "posts" : "notes", ["n": .int(Int64(i))],
                                       handlers: ["mail", "index"], maxAttempts: 2).deliveries
        }
        // Fail every "mail" delivery of "posts".
        let failing = all.filter { $0.handler == "mail" && $0.collection == "posts" }
        try await store.recordAttempts(failing.map { outcome($0, attempt: 1, error: "smtp down", next: 99) })

        let newestFirst = all.map(\.id).reversed().map { $0 }
        #expect(try await store.deliveries(DeliveryFilter()).map(\.id) == newestFirst)
        #expect(try await store.deliveries(DeliveryFilter(limit: 5)).map(\.id) == Array(newestFirst.prefix(5)))
        #expect(try await store.deliveries(DeliveryFilter(limit: 0)).map(\.id) == [newestFirst[0]])      // clamped to 1
        #expect(try await store.deliveries(DeliveryFilter(limit: -3)).count == 1)
        #expect(try await store.deliveries(DeliveryFilter(limit: 1_000_000)).count == 12)               // clamped to 1000

        #expect(try await store.deliveries(DeliveryFilter(status: .failed)).map(\.id) == failing.map(\.id).reversed())
        #expect(try await store.deliveries(DeliveryFilter(status: .pending)).count == 9)
        #expect(try await store.deliveries(DeliveryFilter(status: .dead)).isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(handler: "index")).allSatisfy { $0.handler == "index" })
        #expect(try await store.deliveries(DeliveryFilter(handler: "index")).count == 6)
        #expect(try await store.deliveries(DeliveryFilter(collection: "notes")).count == 6)
        #expect(try await store.deliveries(DeliveryFilter(status: .pending, handler: "mail")).count == 3)
        #expect(try await store.deliveries(DeliveryFilter(status: .pending, handler: "mail", collection: "notes")).count == 3)
        #expect(try await store.deliveries(DeliveryFilter(status: .failed, handler: "mail", collection: "posts", limit: 2)).map(\.id)
                == Array(failing.map(\.id).reversed().prefix(2)))
        #expect(try await store.deliveries(DeliveryFilter(handler: "nobody")).isEmpty)
        #expect(try await store.deliveries(DeliveryFilter(collection: "posts", limit: 3)).count == 3)
    }

    @Test(arguments: Engine.allCases) func jsonShapes(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["h"], maxAttempts: 2)
        let delivery = written.deliveries[0]
        try await store.recordAttempts([AttemptOutcome(deliveryID: delivery.id, attempt: 1, started: "2026-01-02T03:04:05.678Z",
                                                 durationMilliseconds: 12.25, error: "bad at x.lua:1", status: .failed,
                                                 nextAttemptAt: 0)])
        let failed = try await store.delivery(id: delivery.id)
        let json = failed.json
        #expect(json.keys == ["id", "event_id", "handler", "collection", "record_id", "status", "attempts", "max_attempts",
                              "next_attempt_at", "last_error", "created", "updated", "redelivered"])
        #expect(json["id"] == .int(delivery.id) && json["event_id"] == .string(written.event.id))
        #expect(json["status"] == "failed" && json["attempts"] == 1 && json["max_attempts"] == 2)
        #expect(json["next_attempt_at"] == "1970-01-01T00:00:00.000Z")
        #expect(json["last_error"] == "bad at x.lua:1")
        #expect(delivery.json["next_attempt_at"] == .null && delivery.json["last_error"] == .null)

        let attempt = try #require(try await store.attempts(deliveryID: delivery.id).first)
        #expect(attempt.json == [
            "delivery_id": .int(delivery.id), "event_id": .string(written.event.id), "handler": "h", "attempt": 1,
            "status": "failed", "started": "2026-01-02T03:04:05.678Z", "duration_ms": 12.25, "error": "bad at x.lua:1",
        ])
        #expect(attempt.json.keys == ["delivery_id", "event_id", "handler", "attempt", "status", "started", "duration_ms", "error"])
        var succeeded = attempt
        succeeded.succeeded = true
        succeeded.error = nil
        #expect(succeeded.json["status"] == "succeeded" && succeeded.json["error"] == .null)
    }

    /// Attempts of one delivery recorded in one call apply in order; a first attempt recorded
    /// twice counts once, and an unknown delivery changes nothing.
    @Test(arguments: Engine.allCases) func attemptsOfOneDeliveryInOneCallApplyInOrder(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let written = try await insertWithEvent(store, handlers: ["a", "b"], maxAttempts: 3)
        let (a, b) = (written.deliveries[0], written.deliveries[1])
        var unknown = b
        unknown.id = b.id + 500
        try await store.recordAttempts([
            outcome(a, attempt: 1, error: "first", next: 7), outcome(b, attempt: 1), outcome(a, attempt: 2),
            outcome(b, attempt: 1, error: "again"), outcome(unknown, attempt: 1),
        ])
        let first = try await store.delivery(id: a.id)
        #expect(first.status == .succeeded && first.attempts == 2 && first.lastError == nil && first.nextAttemptAt == nil)
        #expect(try await store.attempts(deliveryID: a.id).map(\.succeeded) == [false, true])
        let second = try await store.delivery(id: b.id)
        #expect(second.status == .succeeded && second.attempts == 1, "the repeated first attempt was ignored")
        #expect(try await store.attempts(deliveryID: b.id).map(\.succeeded) == [true])
        #expect(await storeError { try await store.delivery(id: unknown.id) } == .deliveryNotFound(unknown.id))
    }

    @Test(arguments: Engine.allCases) func reopenedStoreTakesUpHalfSucceededEvents(engine: Engine) async throws {
        try await withTemporaryDirectory { directory in
            let database = engine == .postgres ? try await PostgresTestDatabase.create() : nil
            func open() async throws -> any RecordStore {
                guard let database else { return try SQLiteStore(directory: directory) }
                return try await PostgresStore.open(database, logger: PostgresTestDatabase.logger, maxConnections: 2)
            }
            let written: (record: Record, event: OutboxEvent, deliveries: [Delivery])
            let lastSequence: Int64
            do {
                let store = try await open()
                _ = try await store.createCollection(name: "posts")
                written = try await insertWithEvent(store, "posts", ["title": "kept", "nested": ["a": [1, 2]]],
                                              handlers: ["a", "b", "c"], maxAttempts: 3)
                // One handler succeeded, one failed, one never ran: the process dies.
                try await store.recordAttempts([outcome(written.deliveries[0], attempt: 1)])
                try await store.recordAttempts([outcome(written.deliveries[1], attempt: 1, error: "e", next: 42)])
                let last = try await store.delete(collection: "posts", id: written.record.id, ifVersion: 1, outbox: outbox())
                lastSequence = try #require(last.event).sequence
                await (store as? PostgresStore)?.close()
            }
            let store = try await open()
            #expect(try await store.event(sequence: written.event.sequence) == written.event)
            let unfinished = try await store.unfinishedDeliveries()
            #expect(unfinished.map(\.delivery.id) == [written.deliveries[1].id, written.deliveries[2].id, lastSequence * 1000])
            #expect(unfinished.map(\.delivery.status) == [.failed, .pending, .pending])
            #expect(unfinished[0].event == written.event && unfinished[1].event == written.event)
            #expect(unfinished[2].event.sequence == lastSequence)
            #expect(unfinished[0].delivery.nextAttemptAt == 42 && unfinished[0].delivery.lastError == "e")
            #expect(try await store.attempts(deliveryID: written.deliveries[1].id).count == 1)
            #expect(try await store.delivery(id: written.deliveries[0].id).status == .succeeded)
            // Sequences keep growing after a reopen.
            _ = try await store.createCollection(name: "more")
            let next = try await insertWithEvent(store, "more")
            #expect(next.event.sequence > lastSequence)
            #expect(next.deliveries[0].id > written.deliveries[2].id)
        }
    }
}
