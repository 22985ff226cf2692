import MoonbaseModel
import RecordStore
import Testing

/// The cron side of the store: claims, attempts, histories, the log.
@Suite struct CronStoreTests {
    private func claim(_ name: String, slot: Int64?, at created: String = "2026-03-10T00:00:00.001Z", attempts: Int = 1) -> CronClaim {
        CronClaim(name: name, slot: slot, eventID: EventID.make(), scheduledAt: slot.map { Timestamp.format(millisecondsSince1970: $0) } ?? created,
                  maxAttempts: attempts, created: created)
    }

    private func outcome(_ run: CronRun, attempt: Int, error: String?, status: DeliveryStatus, next: Int64? = nil) -> AttemptOutcome {
        AttemptOutcome(deliveryID: run.id, attempt: attempt, started: "2026-03-10T00:00:00.002Z", durationMilliseconds: 1.5, error: error,
                       status: status, nextAttemptAt: next)
    }

    /// A fresh store of `engine`, as a cron store.
    private func cronStore(_ engine: Engine) async throws -> any CronStore & RecordStore {
        try #require(try await makeStore(engine) as? any CronStore & RecordStore)
    }

    @Test(arguments: Engine.allCases)
    func aSlotIsClaimedOnceAndRunsByHandAlways(engine: Engine) async throws {
        let store = try await cronStore(engine)
        let histories = try await store.startCrons([("nightly", "@daily"), ("often", "@every 1m")], now: 1000)
        #expect(histories["nightly"] == CronHistory(schedule: "@daily", since: 1000, lastSlot: nil, lastRun: nil, lastError: nil))
        let first = try #require(try await store.claimCronRun(claim("nightly", slot: 86_400_000)))
        #expect(first.status == .pending && first.attempts == 0 && first.slot == 86_400_000)
        #expect(try await store.claimCronRun(claim("nightly", slot: 86_400_000)) == nil)
        let often = try #require(try await store.claimCronRun(claim("often", slot: 86_400_000)), "another cron's slot is its own")
        let byHand = try #require(try await store.claimCronRun(claim("nightly", slot: nil, at: "2026-03-10T05:00:00.000Z")))
        let again = try #require(try await store.claimCronRun(claim("nightly", slot: nil, at: "2026-03-10T06:00:00.000Z")))
        #expect(byHand.id != again.id && byHand.slot == nil)
        let nightly = try #require(try await store.cronHistories()["nightly"])
        #expect(nightly.lastSlot == 86_400_000, "a run by hand does not move the last slot")
        #expect(nightly.lastRun == "2026-03-10T06:00:00.000Z")
        #expect(try await store.unfinishedCronRuns().map(\.id) == [first.id, often.id, byHand.id, again.id])
    }

    @Test(arguments: Engine.allCases)
    func attemptsAreRecordedLikeDeliveries(engine: Engine) async throws {
        let store = try await cronStore(engine)
        _ = try await store.startCrons([("nightly", "@daily")], now: 0)
        let run = try #require(try await store.claimCronRun(claim("nightly", slot: 60_000, attempts: 2)))
        try await store.recordCronAttempts([outcome(run, attempt: 1, error: "boom", status: .failed, next: 70_000)])
        var stored = try #require(try await store.cronRun(id: run.id))
        #expect(stored.status == .failed && stored.attempts == 1 && stored.nextAttemptAt == 70_000 && stored.lastError == "boom")
        #expect(try await store.cronHistories()["nightly"]?.lastError == "boom")
        #expect(try await store.unfinishedCronRuns().map(\.id) == [run.id])
        try await store.recordCronAttempts([outcome(run, attempt: 2, error: "boom again", status: .dead)])
        stored = try #require(try await store.cronRun(id: run.id))
        #expect(stored.status == .dead && stored.attempts == 2)
        #expect(try await store.unfinishedCronRuns().isEmpty)
        let attempts = try await store.cronAttempts(runID: run.id)
        #expect(attempts.map(\.attempt) == [1, 2] && attempts.map(\.error) == ["boom", "boom again"])
        #expect(attempts.allSatisfy { $0.handler == "nightly" && $0.eventID == run.eventID && !$0.succeeded })
        #expect(stored.json["id"] == .string("cron-\(run.id)") && stored.json["kind"] == "cron" && stored.json["handler"] == "nightly")

        guard case .requeued(let requeued) = try await store.requeueCronRun(id: run.id) else { Issue.record("not requeued"); return }
        #expect(requeued.status == .pending && requeued.maxAttempts == 3)
        #expect(try await store.requeueCronRun(id: run.id) == .notRetryable(.pending))
        #expect(try await store.requeueCronRun(id: 999) == .notFound)
        try await store.recordCronAttempts([outcome(run, attempt: 3, error: nil, status: .succeeded)])
        #expect(try await store.cronHistories()["nightly"]?.lastError == nil)
        #expect(try await store.cronRun(id: 999) == nil)
    }

    @Test(arguments: Engine.allCases)
    func theLogFiltersAndPurges(engine: Engine) async throws {
        let store = try await cronStore(engine)
        _ = try await store.startCrons([("a", "@every 1m"), ("b", "@every 1m")], now: 0)
        var runs: [CronRun] = []
        for slot in 1...4 { runs.append(try #require(try await store.claimCronRun(claim(slot % 2 == 0 ? "a" : "b", slot: Int64(slot) * 60_000)))) }
        try await store.recordCronAttempts(runs.prefix(3).map { outcome($0, attempt: 1, error: nil, status: .succeeded) })
        #expect(try await store.cronRuns(DeliveryFilter()).map(\.id) == runs.reversed().map(\.id))
        #expect(try await store.cronRuns(DeliveryFilter(handler: "a")).map(\.id) == [runs[3].id, runs[1].id])
        #expect(try await store.cronRuns(DeliveryFilter(status: .pending)).map(\.id) == [runs[3].id])
        #expect(try await store.cronRuns(DeliveryFilter(collection: "posts")).isEmpty)
        #expect(try await store.cronRuns(DeliveryFilter(limit: 2)).count == 2)
        #expect(try await store.purgeSucceededCronRuns(before: "9999-01-01T00:00:00.000Z", batchSize: 2) == 2)
        #expect(try await store.purgeSucceededCronRuns(before: "9999-01-01T00:00:00.000Z", batchSize: 2) == 1)
        #expect(try await store.cronRuns(DeliveryFilter()).map(\.id) == [runs[3].id])
        #expect(try await store.cronAttempts(runID: runs[0].id).isEmpty)
        #expect(try await store.cronHistories()["a"]?.lastSlot == 240_000, "the history outlives purged runs")
    }

    @Test func aChangedScheduleStartsItsHistoryAgain() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let store = try SQLiteStore(directory: directory)
                _ = try await store.startCrons([("nightly", "@daily")], now: 1000)
                _ = try await store.claimCronRun(claim("nightly", slot: 86_400_000))
            }
            let store = try SQLiteStore(directory: directory)
            let kept = try await store.startCrons([("nightly", "@daily"), ("new", "@hourly")], now: 5000)
            #expect(kept["nightly"]?.since == 1000 && kept["nightly"]?.lastSlot == 86_400_000)
            #expect(kept["new"]?.since == 5000)
            let changed = try await store.startCrons([("nightly", "@weekly")], now: 9000)
            #expect(changed["nightly"]?.since == 9000 && changed["nightly"]?.schedule == "@weekly")
        }
    }
}
