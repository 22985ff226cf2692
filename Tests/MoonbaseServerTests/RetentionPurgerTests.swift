@testable import MoonbaseServer
import MoonbaseModel
import MoonbaseTestSupport
import RecordStore
import Testing

@Suite struct RetentionPurgerTests {
    @Test func purgesEventsWhoseDeliveriesAllSucceededLongerAgoThanTheRetention() async throws {
        let store = try SQLiteStore.inMemory()
        _ = try await store.createCollection(name: "posts")
        func write(_ eventID: String) async throws -> Int64 {
            let outbox = OutboxRequest(eventID: eventID, targets: [DeliveryTarget(handler: "h", maxAttempts: 2)])
            return try await store.insert(Record.new(collection: "posts", fields: [:]), outbox: outbox).deliveries[0].id
        }
        let (succeeded, failed) = (try await write("evt_done"), try await write("evt_failing"))
        try await store.recordAttempts([
            AttemptOutcome(deliveryID: succeeded, attempt: 1, started: "", durationMilliseconds: 0, error: nil, status: .succeeded, nextAttemptAt: nil),
            AttemptOutcome(deliveryID: failed, attempt: 1, started: "", durationMilliseconds: 0, error: "e", status: .failed, nextAttemptAt: 0),
        ])
        let clock = ManualClock()
        clock.advance(by: SystemDeliveryClock().now() - clock.now()) // the writes' wall-clock time
        let purger = RetentionPurger(store: store, retention: .seconds(3600), clock: clock, logger: LogCapture().logger)
        #expect(await purger.purge() == 0, "kept for the retention period")
        clock.advance(by: 3600 * 1000 + 1000)
        #expect(await purger.purge() == 1, "then gone; an event with an unfinished delivery stays")
        #expect(try await store.deliveries(DeliveryFilter()).map(\.id) == [failed])
    }

    @Test func purgesSucceededCronRunsWithTheSameRetention() async throws {
        let store = try SQLiteStore.inMemory()
        _ = try await store.startCrons([("nightly", "@daily")], now: 0)
        var runs: [CronRun] = []
        for slot: Int64 in [86_400_000, 172_800_000] {
            let claim = CronClaim(name: "nightly", slot: slot, eventID: EventID.make(), scheduledAt: "", maxAttempts: 1, created: Timestamp.now())
            runs.append(try #require(try await store.claimCronRun(claim)))
        }
        try await store.recordCronAttempts([
            AttemptOutcome(deliveryID: runs[0].id, attempt: 1, started: "", durationMilliseconds: 0, error: nil, status: .succeeded, nextAttemptAt: nil),
            AttemptOutcome(deliveryID: runs[1].id, attempt: 1, started: "", durationMilliseconds: 0, error: "e", status: .dead, nextAttemptAt: nil),
        ])
        let clock = ManualClock()
        clock.advance(by: SystemDeliveryClock().now() - clock.now())
        let purger = RetentionPurger(store: store, retention: .seconds(3600), clock: clock, logger: LogCapture().logger, crons: store)
        #expect(await purger.purge() == 0)
        clock.advance(by: 3600 * 1000 + 1000)
        #expect(await purger.purge() == 1, "the succeeded run goes; the dead one stays")
        #expect(try await store.cronRuns(DeliveryFilter()).map(\.id) == [runs[1].id])
    }
}
