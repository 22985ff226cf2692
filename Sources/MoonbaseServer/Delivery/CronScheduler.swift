import HookHost
import Logging
import Metrics
import MoonbaseJSON
import MoonbaseModel
import RecordStore
import ServiceLifecycle
import Synchronization

/// Runs the `cron` hooks (SPEC section 14) at their slots, by the server's `DeliveryClock`.
///
/// Each run is claimed in the store before it runs (`CronStore.claimCronRun`, one per name and
/// slot), so a slot runs once however many schedulers share the store; it is then recorded like a
/// delivery: each attempt, retries on the retry schedule, `dead` and `on_hook_failed` after the
/// last. At start it takes up the runs the last one left unfinished and, for `catch_up` crons,
/// runs a slot missed while the server was down (the latest of them, once). On graceful shutdown
/// it starts no more runs and lets the running ones finish until cancelled; an unfinished run
/// stays pending in the store for the next start.
actor CronScheduler: Service {
    /// A registered cron as the current generation has it.
    struct Cron: Sendable {
        let cron: HookCron
        let file: String
        let line: Int
        let maxAttempts: Int
    }

    /// Where runs are claimed and recorded (the deliveries API reads them from here too); nil
    /// for an engine without cron storage, which serves no cron hooks.
    nonisolated let store: (any CronStore)?
    private let hooks: HookGenerations
    private let clock: any DeliveryClock
    private let retrySchedule: [Int64]
    private let logger: Logger
    private let factory: any MetricsFactory
    /// By name, from the current generation (see `adopt`).
    private var crons: [String: Cron]
    /// Each cron's next slot, for the listing (read from any thread).
    private nonisolated let nextRuns = Mutex<[String: Int64]>([:])
    /// Each cron's slot loop, by name, cancelled when its cron goes or at shutdown.
    private var loops: [String: Task<Void, Never>] = [:]
    /// Failed runs waiting for their retry time, by run id.
    private var retryTimers: [Int64: Task<Void, Never>] = [:]
    private var running = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var isStarted = false
    private var stopping = false
    /// Opens once the scheduler has started (taken up what was left, caught up).
    private let started = Latch(count: 1)

    init(store: (any CronStore)?, hooks: HookGenerations, clock: any DeliveryClock, retrySchedule: [Duration],
         metrics: any MetricsFactory, logger: Logger) {
        self.store = store
        self.hooks = hooks
        self.clock = clock
        self.retrySchedule = retrySchedule.isEmpty ? [0] : retrySchedule.map(\.milliseconds)
        self.logger = logger
        factory = metrics
        crons = Self.crons(in: hooks.catalog)
    }

    /// The cron hooks of `catalog`, by name.
    private static func crons(in catalog: HookCatalog) -> [String: Cron] {
        Dictionary(uniqueKeysWithValues: catalog.cronHandlers.compactMap { index -> (String, Cron)? in
            let handler = catalog.handlers[index]
            guard let cron = handler.cron else { return nil }
            return (cron.name, Cron(cron: cron, file: handler.file, line: handler.line, maxAttempts: handler.retries + 1))
        })
    }

    // MARK: Service

    nonisolated func run() async throws {
        do {
            try await start()
        } catch {
            logger.error("cannot start the cron hooks", metadata: ["error": .string("\(error)")])
        }
        started.open()
        try? await gracefulShutdown()
        await stop()
    }

    /// Takes up the unfinished runs, catches up missed slots, and starts each cron's slot loop.
    private func start() async throws {
        isStarted = true
        guard let store else {
            if !crons.isEmpty {
                logger.warning("cron hooks are not run: this store keeps no cron runs (its engine implements no CronStore)",
                               metadata: ["crons": .string(crons.keys.sorted().joined(separator: ","))])
            }
            return
        }
        let unfinished = try await store.unfinishedCronRuns()
        if !unfinished.isEmpty { logger.info("taking up unfinished cron runs", metadata: ["count": .stringConvertible(unfinished.count)]) }
        for run in unfinished {
            if let due = run.nextAttemptAt, run.status == .failed {
                retry(run, at: due)
            } else {
                launch(run)
            }
        }
        try await schedule(crons.values.sorted { $0.cron.name < $1.cron.name }, store, catchingUp: true)
    }

    /// Notes `list` in the store and starts their slot loops; at start (`catchingUp`), first runs
    /// the latest slot each `catch_up` cron missed while the server was down.
    private func schedule(_ list: [Cron], _ store: any CronStore, catchingUp: Bool) async throws {
        if list.isEmpty { return }
        let now = clock.now()
        let histories = try await store.startCrons(list.map { ($0.cron.name, $0.cron.schedule.text) }, now: now)
        for cron in list {
            if catchingUp, let history = histories[cron.cron.name] {
                let known = max(history.since, history.lastSlot ?? history.since)
                if let missed = cron.cron.schedule.latest(atOrBefore: now, after: known) {
                    let metadata = metadata(cron).merging(["slot": .string(Timestamp.format(millisecondsSince1970: missed))]) { $1 }
                    if cron.cron.catchUp {
                        logger.info("catching up a cron run missed while the server was down", metadata: metadata)
                        await claimAndRun(cron.cron.name, slot: missed)
                    } else {
                        logger.info("skipping a cron run missed while the server was down (catch_up = false)", metadata: metadata)
                    }
                }
            }
            // Known at once for the listing, before the loop's task gets going.
            let (name, schedule) = (cron.cron.name, cron.cron.schedule)
            nextRuns.withLock { $0[name] = schedule.next(after: now) }
            loops[name]?.cancel()
            loops[name] = Task { await self.loop(name, schedule, after: now) }
        }
    }

    /// Follows the current generation after a reload: a cron that is gone stops, a new one or
    /// one whose schedule changed starts from now (a reload misses no slot: nothing to catch up),
    /// the others keep their loop.
    func adopt() async {
        let fresh = Self.crons(in: hooks.catalog)
        let old = crons
        crons = fresh
        guard isStarted, !stopping, let store else { return }
        for (name, cron) in old where fresh[name]?.cron.schedule != cron.cron.schedule {
            loops.removeValue(forKey: name)?.cancel()
            _ = nextRuns.withLock { $0.removeValue(forKey: name) }
        }
        let added = fresh.values.filter { old[$0.cron.name]?.cron.schedule != $0.cron.schedule }.sorted { $0.cron.name < $1.cron.name }
        do {
            try await schedule(added, store, catchingUp: false)
        } catch {
            logger.error("cannot start the reloaded cron hooks", metadata: ["error": .string("\(error)")])
        }
    }

    /// Starts no more runs, and waits for the running ones until the task is cancelled.
    private func stop() async {
        stopping = true
        for timer in Array(loops.values) + retryTimers.values { timer.cancel() }
        loops = [:]
        retryTimers = [:]
        // Polled so that cancellation (past the shutdown grace) ends the wait at once.
        while running > 0, (try? await Task.sleep(for: .milliseconds(20))) != nil {}
    }

    /// Sleeps until each slot of `schedule` after `after`, claims it and runs it.
    private func loop(_ name: String, _ schedule: CronSchedule, after: Int64) async {
        var after = after
        while !Task.isCancelled, let slot = schedule.next(after: after) {
            nextRuns.withLock { $0[name] = slot }
            do {
                try await clock.sleep(until: slot)
            } catch {
                return
            }
            if Task.isCancelled || stopping { return }
            after = slot
            await claimAndRun(name, slot: slot)
        }
    }

    // MARK: Runs

    /// Claims `slot` of cron `name` and runs it, unless someone else claimed it first (or the
    /// cron is gone meanwhile).
    private func claimAndRun(_ name: String, slot: Int64) async {
        guard let cron = crons[name], let store else { return }
        do {
            if let run = try await store.claimCronRun(claim(cron, slot: slot, scheduledAt: slot)) {
                launch(run)
            } else {
                logger.debug("cron slot claimed elsewhere", metadata: metadata(cron))
            }
        } catch {
            logger.error("cannot claim a cron run", metadata: metadata(cron).merging(["error": .string("\(error)")]) { $1 })
        }
    }

    /// `POST /api/v1/hooks/cron/{name}/run`: a run now, recorded like any; the cron's next slot
    /// stays as it was. Nil for an unknown name.
    /// - Throws: `StoreError.database` on an engine without cron storage.
    func runNow(_ name: String) async throws -> CronRun? {
        guard let cron = crons[name] else { return nil }
        guard let store else { throw StoreError.database("cron hooks are not run: this store keeps no cron runs") }
        let now = clock.now()
        guard let run = try await store.claimCronRun(claim(cron, slot: nil, scheduledAt: now)) else { return nil }
        logger.info("cron run asked for by hand", metadata: metadata(cron).merging(["run_id": .stringConvertible(run.id)]) { $1 })
        launch(run)
        return run
    }

    /// A failed or dead run put back to pending by the retry endpoint runs now (instead of at its
    /// retry time, not a second time).
    func retryNow(_ run: CronRun) {
        retryTimers.removeValue(forKey: run.id)?.cancel()
        launch(run)
    }

    private func claim(_ cron: Cron, slot: Int64?, scheduledAt: Int64) -> CronClaim {
        CronClaim(name: cron.cron.name, slot: slot, eventID: EventID.make(), scheduledAt: Timestamp.format(millisecondsSince1970: scheduledAt),
                  maxAttempts: cron.maxAttempts, created: Timestamp.format(millisecondsSince1970: clock.now()))
    }

    /// Runs the next attempt of `run` in a task of its own, so that a long run never delays the
    /// next slot.
    private func launch(_ run: CronRun) {
        running += 1
        Task { await attempt(run) }
    }

    private func attempt(_ run: CronRun) async {
        defer {
            running -= 1
            notifyIfIdle()
        }
        let number = run.attempts + 1
        let event: JSONObject = [
            "type": "cron", "id": .string(run.eventID), "name": .string(run.name), "scheduled_at": .string(run.scheduledAt),
            "timestamp": .string(run.created), "attempt": .int(Int64(number)),
        ]
        let startedAt = Timestamp.now()
        let error: String?
        var duration = Duration.zero
        // The run finishes in the generation it started in, however a reload goes meanwhile.
        let generation = hooks.acquire()
        let catalog = generation.catalog
        if let index = catalog.cronHandlers.first(where: { catalog.handlers[$0].cron?.name == run.name }) {
            let outcome = await generation.pool.runCron(index, event: event)
            error = outcome.error?.message
            duration = outcome.duration
        } else {
            error = "cron \(run.name) is no longer registered"
        }
        generation.release()
        let now = clock.now()
        let status: DeliveryStatus = error == nil ? .succeeded : number < run.maxAttempts ? .failed : .dead
        let nextAttempt = status == .failed ? now + retrySchedule[min(number - 1, retrySchedule.count - 1)] : nil
        let outcome = AttemptOutcome(deliveryID: run.id, attempt: number, started: startedAt,
                                     durationMilliseconds: Double(duration.nanoseconds) / 1_000_000, error: error, status: status,
                                     nextAttemptAt: nextAttempt)
        Counter(label: "moonbase_cron_runs_total", dimensions: [("cron", run.name), ("outcome", status.rawValue)], factory: factory).increment()
        do {
            try await store?.recordCronAttempts([outcome])
        } catch {
            // Unrecorded, the run stays pending in the store: the next start runs it again.
            logger.error("cannot record a cron run", metadata: ["cron": .string(run.name), "error": .string("\(error)")])
        }
        var next = run
        next.status = status
        next.attempts = number
        next.nextAttemptAt = nextAttempt
        next.lastError = error
        next.updated = Timestamp.format(millisecondsSince1970: now)
        switch status {
        case .failed: retry(next, at: nextAttempt ?? now)
        case .dead: deadLetter(next, event: event)
        default: break
        }
    }

    /// Runs the failed `run` again at `due`.
    private func retry(_ run: CronRun, at due: Int64) {
        let clock = clock
        retryTimers[run.id] = Task {
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            if !Task.isCancelled && !self.stopping {
                self.retryTimers[run.id] = nil
                self.launch(run)
            }
        }
    }

    /// Logs a dead run and runs the `on_hook_failed` handlers on it.
    private func deadLetter(_ run: CronRun, event: JSONObject) {
        logger.error("cron run is dead", metadata: [
            "cron": .string(run.name), "run_id": .stringConvertible(run.id), "event_id": .string(run.eventID),
            "attempts": .stringConvertible(run.attempts), "error": .string(run.lastError ?? ""),
        ])
        let payload: JSONObject = ["type": "hook.failed", "id": .string(run.eventID), "delivery": .object(run.json), "event": .object(event)]
        running += 1
        Task {
            await hooks.withCurrent { await $0.pool.deliverFailure(payload) }
            finishedDeadLetter()
        }
    }

    private func finishedDeadLetter() {
        running -= 1
        notifyIfIdle()
    }

    // MARK: State

    /// The listing's view of each cron, by name: `next_run`, `last_run`, `last_error`.
    func status() async throws -> [String: JSONObject] {
        let histories = try await store?.cronHistories() ?? [:]
        let next = nextRuns.withLock { $0 }
        var result: [String: JSONObject] = [:]
        for name in crons.keys {
            let history = histories[name]
            result[name] = [
                "next_run": next[name].map { .string(Timestamp.format(millisecondsSince1970: $0)) } ?? .null,
                "last_run": history?.lastRun.map { .string($0) } ?? .null,
                "last_error": history?.lastError.map { .string($0) } ?? .null,
            ]
        }
        return result
    }

    /// Returns once the scheduler has started and no run (or `on_hook_failed` call) is under way;
    /// retries waiting for their time do not count.
    func waitUntilIdle() async {
        await started.wait()
        if running == 0 { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func notifyIfIdle() {
        guard running == 0, !idleWaiters.isEmpty else { return }
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// The names of the crons of the current generation.
    var names: [String] { crons.keys.sorted() }

    private nonisolated func metadata(_ cron: Cron) -> Logger.Metadata {
        ["cron": .string(cron.cron.name), "file": .string(cron.file), "line": .stringConvertible(cron.line),
         "schedule": .string(cron.cron.schedule.text)]
    }
}
