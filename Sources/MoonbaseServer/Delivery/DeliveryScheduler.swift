import MoonbaseModel
import HookHost
import Logging
import RecordStore
import ServiceLifecycle

/// Delivers committed events to after-handlers (SPEC section 6, durability).
///
/// Every event and its deliveries are already in the store when they arrive here (written in
/// the record's transaction), so a crash loses nothing: start-up takes up whatever was not
/// finished. The parts, each in a file of its own: `DeliveryLanes` keeps the order (a state
/// machine), `DeliveryBacklog` bounds the memory, `SyncWaiters` lets requests wait for
/// `async = false` handlers, `RetentionPurger` deletes old events. This actor glues them: it
/// feeds the lanes, hands their jobs to the hook pool, records the outcomes before the lanes move
/// on, and keeps the retry timers.
///
/// As a service it takes up what the last run left, then delivers until graceful shutdown; then
/// it starts no more jobs and lets the running ones finish until cancelled. Whatever is not
/// finished stays in the store for the next start.
actor DeliveryScheduler: Service {
    typealias Lanes = DeliveryLanes<OutboxEvent>

    let store: any RecordStore
    let hooks: HookGenerations
    private let clock: any DeliveryClock
    let logger: Logger
    /// Attempts by outcome and handler durations, for `/metrics`.
    nonisolated let metrics: HookMetrics
    var handlers: DeliveryHandlers
    /// The hook generation `handlers` is mapped to.
    private var mappedGeneration: Int
    private var lanes: Lanes
    /// The lanes' actions not yet carried out (kept to reuse its storage).
    private var actions: [Lanes.Action] = []
    private let committed: CommittedEvents
    private nonisolated var backlog: CommittedEvents.Backlog { committed.backlog }
    private let syncWaiters: SyncWaiters
    /// The keys of the `async = false` handlers by catalog position; empty when there are none.
    private var syncKeys: [String?]
    private let running = RunningJobs<OutboxEvent>()
    private var jobCount = 0
    /// A read of the store's backlog is under way: the inbox waits until it is done.
    private var refilling = false
    /// Timers of the deliveries waiting for their retry time, by delivery id.
    private var retryTimers: [Int64: Task<Void, Never>] = [:]
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Set on graceful shutdown: no job starts any more.
    private var stopping = false
    /// Opens once the last running job is recorded, after graceful shutdown.
    private var drained: Latch?

    init(store: any RecordStore, hooks: HookGenerations, clock: any DeliveryClock, retrySchedule: [Duration], maxJobs: Int,
         committed: CommittedEvents, metrics: HookMetrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.hooks = hooks
        self.clock = clock
        self.logger = logger
        let generation = hooks.current
        handlers = DeliveryHandlers(generation.catalog)
        mappedGeneration = generation.number
        lanes = Lanes(maxRunning: maxJobs, retrySchedule: retrySchedule.map(\.milliseconds), collectionOrdered: handlers.collectionOrdered)
        self.committed = committed
        syncKeys = handlers.syncKeysByCatalogIndex(catalogSize: generation.catalog.handlers.count)
        syncWaiters = SyncWaiters(syncKeys: Set(syncKeys.compactMap { $0 }))
    }

    // MARK: Service

    nonisolated func run() async throws {
        try await refill()
        for await _ in committed.wakeups.cancelOnGracefulShutdown() { await drainInbox() }
        await stop()
    }

    /// Starts no more jobs, and waits for the running ones until the task is cancelled.
    private func stop() async {
        stopping = true
        for timer in retryTimers.values { timer.cancel() }
        retryTimers = [:]
        if lanes.running > 0 {
            logger.info("stopping: waiting for running hooks", metadata: ["groups": .stringConvertible(lanes.running)])
            let drained = Latch(count: 1)
            self.drained = drained
            await drained.wait()
        }
        if lanes.running > 0 { logger.warning("hooks still running at shutdown; they run again at the next start") }
        if let claims = store.deliveryClaims {
            do {
                try await claims.release(nil)
            } catch {
                logger.warning("cannot give up this node's hook deliveries: other nodes take them up once its lease runs out",
                               metadata: ["error": .string("\(error)")])
            }
        }
    }

    // MARK: Committed events

    /// The most events this scheduler held at once (tests).
    nonisolated var peakBacklog: Int { backlog.peak }

    /// Events held in memory now, and how often later ones were left in the store.
    nonisolated var backlogFigures: (held: Int, spills: Int) { backlog.figures }

    private func drainInbox() {
        if refilling { return } // the refill drains once it has taken the older events
        commitUnfinished([], inbox: backlog.takeInbox())
    }

    /// Reads events left in the store, in commit order, while there is room for them; once the
    /// store has no more, takes events in through the inbox again. At start-up (the backlog starts
    /// out spilled from the first event), this takes up what the last run left unfinished:
    /// pending deliveries run again, failed ones at their retry time.
    private func refill() async throws {
        guard !refilling else { return }
        refilling = true
        defer {
            refilling = false
            drainInbox()
        }
        let startedFrom = backlog.spilledFrom
        var taken = 0
        while let from = backlog.spilledFrom, let room = backlog.roomToRefill { // `finished` calls again once half is free
            let (unfinished, next) = try await store.unfinishedDeliveries(from: from, events: room)
            taken += commitUnfinished(unfinished)
            if let next {
                backlog.spilled(from: next)
                continue
            }
            // The store had nothing more when read: take events in again, unless some were left
            // there after the read looked; then read those first (the loop stays within the room).
            let readThrough = max(from - 1, unfinished.last?.delivery.eventSequence ?? from - 1)
            if backlog.takeEventsAgain(readThrough: readThrough), from > 0 {
                logger.info("hook backlog caught up with the store")
            }
        }
        if startedFrom == 0 && taken > 0 {
            logger.info("taking up unfinished hook deliveries", metadata: ["count": .stringConvertible(taken)])
        }
    }

    /// `refill` when events wait in the store (it reads only while half the backlog is free).
    private func refillIfSpilled() async {
        guard !refilling, !stopping, backlog.spilledFrom != nil else { return }
        do {
            try await refill()
        } catch {
            // Left in the store: the next finished job, wait or start tries again.
            logger.error("cannot read hook deliveries back from the store", metadata: ["error": .string("\(error)")])
        }
    }

    /// Commits deliveries read from the store (by delivery id: an event's are together);
    /// returns how many. With `inbox` (events committed here meanwhile), commits its events
    /// among them by sequence: a lane's events go in in commit order, whichever way they came.
    @discardableResult
    private func commitUnfinished(_ unfinished: [(delivery: Delivery, event: OutboxEvent)],
                                  inbox: ArraySlice<(element: (OutboxEvent, NewDeliveries), sequence: Int64)> = []) -> Int {
        let now = clock.now()
        var inbox = inbox
        func commitInbox(before sequence: Int64) {
            while let (element, eventSequence) = inbox.first, eventSequence < sequence {
                lanes.commit(element.0, collection: element.0.collection, recordID: element.0.recordID, laneDeliveries(element.1),
                             now: now, into: &actions)
                inbox.removeFirst()
            }
        }
        var start = unfinished.startIndex
        while start < unfinished.endIndex {
            let event = unfinished[start].event
            let end = unfinished[start...].firstIndex { $0.event.sequence != event.sequence } ?? unfinished.endIndex
            commitInbox(before: event.sequence)
            lanes.commit(event, collection: event.collection, recordID: event.recordID, unfinished[start..<end].map { laneDelivery($0.delivery) },
                         now: now, into: &actions)
            start = end
        }
        commitInbox(before: .max)
        perform()
        return unfinished.count
    }

    // MARK: Claims (nodes sharing a database)

    /// Takes up deliveries that no live node holds (see `DeliveryClaims`), as many as the backlog
    /// has room for, and only while nothing of this node's waits in the store (a claimed
    /// delivery may follow one of those in its lane). False when it did not look because a pass
    /// (or a refill) was under way.
    @discardableResult
    func claimUnheld(from claims: any DeliveryClaims) async throws(StoreError) -> Bool {
        if refilling { return false }
        guard !stopping, backlog.spilledFrom == nil, let room = backlog.roomToRefill else { return true }
        drainInbox()
        // The inbox waits meanwhile: events committed here during the claim are merged in below.
        refilling = true
        var claimed: [(delivery: Delivery, event: OutboxEvent)] = []
        var failure: StoreError?
        do { claimed = try await claims.claim(limit: room) } catch { failure = error }
        refilling = false
        // The backlog filled up meanwhile: an event of this node's left in the store may come
        // before a claimed delivery in its lane. Give them back; a later pass takes them again.
        let giveBack = !claimed.isEmpty && backlog.spilledFrom != nil
        commitUnfinished(giveBack ? [] : claimed, inbox: backlog.takeInbox())
        if let failure { throw failure }
        if giveBack {
            try await claims.release(claimed.map(\.delivery.id))
        } else if !claimed.isEmpty {
            logger.debug("claimed hook deliveries", metadata: ["count": .stringConvertible(claimed.count)])
        }
        return true
    }

    // MARK: Requests

    /// The deliveries whose attempt is under way right now.
    nonisolated var runningDeliveries: Set<Int64> { running.deliveryIDs }

    /// Before a write: a latch the request can wait on until the `async = false` handlers among
    /// `handlers` (the write's targets) have run on the event `eventID`; nil when there are none.
    nonisolated func expectSync(eventID: String, handlers: [DeliveryTarget]) -> Latch? {
        syncWaiters.expect(eventID: eventID, handlers: handlers.lazy.map(\.handler))
    }

    /// After a write whose `async = false` handlers may run on other nodes (see
    /// `NewDeliveries.elsewhere`): watches those deliveries in the store, for at most `limit`,
    /// and lets the request go once each has been tried (succeeded, failed or dead).
    nonisolated func follow(elsewhere deliveries: NewDeliveries, for limit: Duration) {
        let (store, syncWaiters) = (store, syncWaiters)
        let watched = deliveries.elsewhere.filter { syncWaiters.isWaiting(eventID: deliveries.eventID, handler: deliveries.targets[$0].handler) }
        guard !watched.isEmpty else { return }
        Task {
            let deadline = ContinuousClock.now + limit
            var left = watched
            while !left.isEmpty, ContinuousClock.now < deadline {
                try? await Task.sleep(for: Self.followInterval)
                var waiting: [Int] = []
                for position in left {
                    let delivery = try? await store.delivery(id: deliveries.id(at: position))
                    if let delivery, delivery.status != .pending || delivery.attempts > 0 {
                        syncWaiters.handled(eventID: deliveries.eventID, handler: delivery.handler)
                    } else {
                        waiting.append(position)
                    }
                }
                left = waiting
            }
        }
    }

    /// How often `follow(elsewhere:for:)` looks at the store.
    static let followInterval: Duration = .milliseconds(20)

    /// The write for `eventID` was refused: nobody will run its handlers.
    nonisolated func cancelSync(eventID: String, handlers: [DeliveryTarget]) {
        syncWaiters.cancel(eventID: eventID, handlers: handlers.lazy.map(\.handler))
    }

    /// A failed or dead delivery, put back to pending by the store, runs again. One waiting for
    /// its retry time runs now instead, in its place at the head of its lane (not a second time).
    func retryNow(_ delivery: Delivery) async throws {
        metrics.retriedByRequest()
        if lanes.requeue(laneDelivery(delivery)) {
            retryTimers.removeValue(forKey: delivery.id)?.cancel()
        } else if let spilled = backlog.spilledFrom, delivery.eventSequence >= spilled {
            return // still in the part of the backlog left in the store: read from there in its turn
        } else {
            let event = try await store.event(sequence: delivery.eventSequence)
            lanes.commit(event, collection: event.collection, recordID: event.recordID, [laneDelivery(delivery)], now: clock.now(), into: &actions)
        }
        perform()
    }

    /// Returns once nothing is running or ready to run (retries waiting for their time do not count).
    func waitUntilIdle() async {
        drainInbox()
        if lanes.running == 0 { await refillIfSpilled() } // nothing running would call it
        if isIdle { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    // MARK: Reloads

    /// Maps the handlers to the current hook generation, if it is new: pending deliveries follow
    /// their handler's key, and those of a handler that is gone, waiting for a retry, end now.
    func adopt() {
        adopt(hooks.current)
        perform()
    }

    private func adopt(_ generation: HookGeneration) {
        guard generation.number > mappedGeneration else { return }
        mappedGeneration = generation.number
        let gone = handlers.remap(to: generation.catalog)
        lanes.collectionOrdered = handlers.collectionOrdered
        syncKeys = handlers.syncKeysByCatalogIndex(catalogSize: generation.catalog.handlers.count)
        syncWaiters.update(syncKeys: Set(syncKeys.compactMap { $0 }))
        if !gone.isEmpty {
            for id in lanes.wakeWaiting(of: gone) { retryTimers.removeValue(forKey: id)?.cancel() }
        }
    }

    // MARK: Running

    /// Starts what is ready and carries out the lanes' actions. `recorded`: the attempts just
    /// recorded, whose errors dead deliveries report.
    private func perform(recorded: [AttemptOutcome] = []) {
        if !stopping { lanes.start(into: &actions) }
        backlog.report(queued: lanes.queuedGroups)
        for index in actions.indices {
            switch actions[index] {
            case .run(let job):
                run(job)
            case .retryAt(let id, let due):
                scheduleRetry(id, at: due)
            case .dead(let delivery, let event):
                deadLetter(delivery, event, error: recorded.first { $0.deliveryID == delivery.id }?.error)
            }
        }
        actions.removeAll(keepingCapacity: true)
        if lanes.running == 0 { drained?.open() }
        notifyIfIdle()
    }

    private func run(_ job: Lanes.Job) {
        jobCount += 1
        let number = jobCount
        running.add(job, number: number)
        // The job runs in the current generation, whatever reload comes while it runs.
        let generation = hooks.acquire()
        adopt(generation)
        let (work, urgent) = hookWork(job)
        let (handlers, syncWaiters, syncKeys) = (handlers, syncWaiters, syncKeys)
        Task {
            let startedAt = Timestamp.now()
            let outcomes = await generation.pool.deliver(work, urgent: urgent) { position, outcome in
                // Lets a request waiting for this handler go before the event's later handlers run.
                if !syncKeys.isEmpty, let key = syncKeys[outcome.handler] { syncWaiters.handled(eventID: work[position].event.id, handler: key) }
            }
            generation.release()
            await finished(job, number: number, outcomes: outcomes, startedAt: startedAt, in: generation, handlers: handlers)
        }
    }

    /// `handlers`: as they were mapped when the job started, to `generation`.
    private func finished(_ job: Lanes.Job, number: Int, outcomes: [[HookOutcome]], startedAt: String, in generation: HookGeneration,
                          handlers: DeliveryHandlers) async {
        let now = clock.now()
        let results = attemptResults(job, outcomes, handlers)
        let verdicts = lanes.verdicts(job, results, now: now)
        metrics.finished(outcomes, verdicts, in: generation)
        let records = attemptRecords(job, outcomes, verdicts, startedAt: startedAt, handlers)
        do {
            try await store.recordAttempts(records)
        } catch {
            // Unrecorded attempts stay pending in the store: the next start takes them up again.
            logger.error("cannot record hook deliveries", metadata: ["error": .string("\(error)")])
        }
        running.remove(number: number)
        if !syncKeys.isEmpty { releaseSyncWaitersOfGoneHandlers(job, results, handlers) }
        lanes.finished(job, verdicts, now: now, into: &actions)
        perform(recorded: records)
        await refillIfSpilled()
    }

    /// A handler the worker could not run was never counted down by it.
    private func releaseSyncWaitersOfGoneHandlers(_ job: Lanes.Job, _ results: [AttemptResult], _ handlers: DeliveryHandlers) {
        var position = 0
        for group in job.groups {
            for delivery in group.deliveries {
                let handler = handlers[delivery.handler]
                if results[position] == .handlerGone && handler.isSync { syncWaiters.handled(eventID: group.event.id, handler: handler.key) }
                position += 1
            }
        }
    }

    /// `id`, alone at the head of its handler lane, is due again at `due`.
    private func scheduleRetry(_ id: Int64, at due: Int64) {
        let clock = clock
        retryTimers[id]?.cancel()
        retryTimers[id] = Task {
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            if !Task.isCancelled { self.retryDue(id) } // the task runs on the actor
        }
    }

    private func retryDue(_ id: Int64) {
        retryTimers[id] = nil
        lanes.retryDue(id, now: clock.now())
        perform()
    }

    /// Nothing running, ready, waiting in the inbox (a handler's own write may have put an event
    /// there just before it finished), or left in the store to read back.
    private var isIdle: Bool {
        lanes.isIdle && !refilling && backlog.inboxIsEmpty && backlog.spilledFrom == nil
    }

    private func notifyIfIdle() {
        guard !idleWaiters.isEmpty, isIdle else { return }
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}
