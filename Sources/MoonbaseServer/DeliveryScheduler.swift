import Foundation
import HookHost
import Logging
import MoonbaseJSON
import RecordStore
import Synchronization

/// Delivers committed events to after-handlers (SPEC section 6, durability).
///
/// Every event and its deliveries are already in the store when they arrive here (written in
/// the record's transaction), so a crash loses nothing: start-up takes up whatever was not
/// finished. Deliveries of one record to one handler form a lane (of one collection, for a
/// handler with `order = "collection"`): they run one at a time, in commit order, and a failing
/// one holds its lane until it succeeds or is dead. Deliveries of
/// one event that become ready together run as one group, so the event table is built once, and
/// groups that are ready together share a job (one hand-off to a worker, one store write). At most
/// `maxJobs` groups are under way (run, outcome not yet recorded) at any time: after a crash, at
/// most those run twice.
actor DeliveryScheduler {
    /// The record (or, for handlers that keep collection order, the collection) a lane is for.
    /// Its hash is computed once per event and shared by the lanes of all its handlers.
    private struct LaneRecord: Hashable {
        let collection: String
        /// Empty for handlers whose deliveries keep collection order.
        let recordID: String
        let hash: Int

        init(collection: String, recordID: String) {
            self.collection = collection
            self.recordID = recordID
            var hasher = Hasher()
            hasher.combine(collection)
            hasher.combine(recordID)
            hash = hasher.finalize()
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }

        static func == (a: LaneRecord, b: LaneRecord) -> Bool {
            a.hash == b.hash && a.recordID == b.recordID && a.collection == b.collection
        }
    }

    /// One lane: the deliveries of one handler (its catalog position; a negative number for a key
    /// no longer in the catalog) for one record.
    private struct LaneKey: Hashable {
        var handler: Int
        var record: LaneRecord
    }

    /// An event, shared by the deliveries made of it (a copy each retained its strings).
    private final class SharedEvent {
        let value: OutboxEvent

        init(_ value: OutboxEvent) {
            self.value = value
        }
    }

    /// A delivery waiting in its lane, which is a list of these linked by `next`, in commit
    /// order. The head is running, waiting for its retry, or ready.
    private final class Pending {
        var delivery: Delivery
        let shared: SharedEvent
        let lane: LaneKey
        /// The handler's position in the catalog; nil if no handler has its key any more.
        let handler: Int?
        /// The next delivery in the lane.
        var next: Pending?

        var event: OutboxEvent { shared.value }

        init(_ delivery: consuming Delivery, _ event: SharedEvent, lane: LaneKey, handler: Int?) {
            self.delivery = delivery
            self.shared = event
            self.lane = lane
            self.handler = handler
        }
    }

    /// Jobs under way at most: enough for many handlers waiting on the network at once, few
    /// enough to bound what a crash runs twice.
    private let maxJobs: Int

    private let store: RecordStore
    private let hooks: HookPool
    private let clock: any DeliveryClock
    private let retrySchedule: [Int64]
    private let logger: Logger
    private let handlerIndex: [String: Int]
    /// Keys of the after-handlers with `async = false`: usually none, so most writes skip the
    /// latch without looking at their handlers.
    private let syncHandlerKeys: Set<String>
    /// Keys of the after-handlers with `order = "collection"`.
    private let collectionOrderKeys: Set<String>
    /// The last delivery of each lane that has any (a lane goes once its last one is done).
    private var laneTails: [LaneKey: Pending] = [:]
    /// Numbers for the keys of handlers that are not in the catalog (any more), below 0.
    private var unknownHandlers: [String: Int] = [:]
    /// Lane heads that can start now, in the order they became ready.
    private var ready: [Pending] = []
    private var readyHead = 0
    /// Deliveries waiting for their retry time (each the head of its lane), by delivery id.
    private var retryTasks: [Int64: (task: Task<Void, Never>, item: Pending)] = [:]
    private var purgeTask: Task<Void, Never>?
    private var jobs = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Deliveries whose attempt is under way (dispatched, outcome not yet recorded).
    private let running = Mutex<Set<Int64>>([])
    /// Requests waiting for an `async = false` handler, by "event id#handler key"; opened from the worker.
    private let syncWaiters = Mutex<[String: Latch]>([:])
    /// Committed events on their way in, in commit order.
    private let inbox = Mutex<(items: [(OutboxEvent, [Delivery])], drainScheduled: Bool)>(([], false))

    init(store: RecordStore, hooks: HookPool, clock: any DeliveryClock, retrySchedule: [Duration], maxJobs: Int, logger: Logger) {
        self.store = store
        self.maxJobs = max(1, maxJobs)
        self.hooks = hooks
        self.clock = clock
        self.retrySchedule = retrySchedule.map { $0.milliseconds }
        self.logger = logger
        var index: [String: Int] = [:]
        for (position, handler) in hooks.catalog.handlers.enumerated() where handler.phase == .after { index[handler.key] = position }
        handlerIndex = index
        syncHandlerKeys = Set(hooks.catalog.handlers.filter { $0.phase == .after && !$0.async }.map(\.key))
        collectionOrderKeys = Set(hooks.catalog.handlers.filter { $0.phase == .after && $0.order == .collection }.map(\.key))
    }

    /// `record`: the event's record, if already known.
    private func pending(_ delivery: consuming Delivery, _ event: SharedEvent, record: LaneRecord? = nil) -> Pending {
        let handler = handlerIndex[delivery.handler]
        let laneRecord = isCollectionOrdered(delivery.handler)
            ? LaneRecord(collection: delivery.collection, recordID: "")
            : record ?? LaneRecord(collection: delivery.collection, recordID: delivery.recordID)
        let lane = LaneKey(handler: handler ?? unknownHandler(delivery.handler), record: laneRecord)
        return Pending(delivery, event, lane: lane, handler: handler)
    }

    private func unknownHandler(_ key: String) -> Int {
        if let known = unknownHandlers[key] { return known }
        let number = -1 - unknownHandlers.count
        unknownHandlers[key] = number
        return number
    }

    /// The deliveries whose attempt is under way right now.
    nonisolated var runningDeliveries: Set<Int64> {
        running.withLock { $0 }
    }

    /// Takes up what the last run left unfinished: pending deliveries run again, failed ones at
    /// their retry time.
    func resumeUnfinished() async throws {
        let unfinished = try await store.async.unfinishedDeliveries()
        if !unfinished.isEmpty {
            logger.info("taking up unfinished hook deliveries", metadata: ["count": .stringConvertible(unfinished.count)])
        }
        var events: [Int64: SharedEvent] = [:]
        for item in unfinished {
            let event = events[item.event.sequence] ?? SharedEvent(item.event)
            events[item.event.sequence] = event
            enqueue(pending(item.delivery, event))
        }
        startReady()
    }

    /// Takes the deliveries of a just-committed event. Called by the store on its writer, in
    /// commit order; the inbox keeps that order until the actor enqueues them.
    nonisolated func accept(_ event: OutboxEvent, _ deliveries: [Delivery]) {
        let mustDrain = inbox.withLock { inbox -> Bool in
            inbox.items.append((event, deliveries))
            defer { inbox.drainScheduled = true }
            return !inbox.drainScheduled
        }
        if mustDrain { Task { await self.drainInbox() } }
    }

    private func drainInbox() {
        var items = inbox.withLock { inbox -> [(OutboxEvent, [Delivery])] in
            inbox.drainScheduled = false
            var taken: [(OutboxEvent, [Delivery])] = []
            swap(&taken, &inbox.items)
            return taken
        }
        // Taken apart rather than iterated, so each delivery moves into its `Pending` instead of
        // being copied (and its strings retained, then released with the array).
        items.reverse()
        while case (let event, var deliveries)? = items.popLast() {
            let shared = SharedEvent(event)
            let record = LaneRecord(collection: event.collection, recordID: event.recordID)
            deliveries.reverse()
            while let delivery = deliveries.popLast() { enqueue(pending(delivery, shared, record: record)) }
        }
        startReady()
    }

    /// Before a write: a latch the request can wait on until the `async = false` handlers among
    /// `handlers` (the write's targets) have run on the event `eventID`; nil when there are none.
    nonisolated func expectSync(eventID: String, handlers: [DeliveryTarget]) -> Latch? {
        if syncHandlerKeys.isEmpty { return nil }
        let waited = handlers.map(\.handler).filter { syncHandlerKeys.contains($0) }
        if waited.isEmpty { return nil }
        let latch = Latch(count: waited.count)
        syncWaiters.withLock { waiters in for key in waited { waiters[eventID + "#" + key] = latch } }
        return latch
    }

    /// The write for `eventID` was refused: nobody will run its handlers.
    nonisolated func cancelSync(eventID: String, handlers: [DeliveryTarget]) {
        let latches = syncWaiters.withLock { waiters in handlers.compactMap { waiters.removeValue(forKey: eventID + "#" + $0.handler) } }
        for latch in latches { latch.open() }
    }

    /// A failed or dead delivery, put back to pending by the store, runs again. One waiting for
    /// its retry time runs now instead, in its place at the head of its lane (not a second time).
    func retryNow(_ delivery: Delivery) async throws {
        if let waiting = retryTasks.removeValue(forKey: delivery.id) {
            waiting.task.cancel()
            waiting.item.delivery = delivery
            ready.append(waiting.item)
        } else {
            let event = try await store.async.event(sequence: delivery.eventSequence)
            enqueue(pending(delivery, SharedEvent(event)))
        }
        startReady()
    }

    /// Returns once nothing is running or ready to run (retries waiting for their time do not count).
    func waitUntilIdle() async {
        drainInbox()
        if jobs == 0 && readyHead == ready.count { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Every minute, deletes the events whose deliveries all succeeded longer than `retention` ago
    /// (in batches); an event with a pending, failed or dead delivery is never purged.
    func startPurging(retention: Duration) {
        let (store, logger) = (store, logger)
        purgeTask = Task.detached(priority: .background) {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                let cutoff = ISO8601DateFormatter.string(from: Date().addingTimeInterval(-Double(retention.milliseconds) / 1000),
                                                         timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
                var purged = 0
                while !Task.isCancelled, let batch = try? await store.async.purgeSucceeded(before: cutoff, batchSize: 1000), batch > 0 {
                    purged += batch
                    if batch < 1000 { break }
                }
                if purged > 0 { logger.info("purged old hook events", metadata: ["count": .stringConvertible(purged)]) }
            }
        }
    }

    /// Stops retry timers and purging; what is not finished stays in the store for the next start.
    func stop() {
        for waiting in retryTasks.values { waiting.task.cancel() }
        retryTasks = [:]
        purgeTask?.cancel()
    }

    // MARK: Scheduling

    private func enqueue(_ item: Pending) {
        if let tail = laneTails.updateValue(item, forKey: item.lane) {
            tail.next = item
            return
        }
        if item.delivery.status == .failed, let due = item.delivery.nextAttemptAt, due > clock.now() {
            scheduleRetry(item, at: due)
        } else {
            ready.append(item)
        }
    }

    /// Starts ready lane heads while there is room, grouping consecutive heads of one event (with
    /// the same attempt number) into one group, and up to `batchLimit` groups into one job.
    private func startReady() {
        while jobs < maxJobs && readyHead < ready.count {
            var batch: [[Pending]] = []
            while jobs + batch.count < maxJobs && batch.count < Self.batchLimit && readyHead < ready.count {
                var group: [Pending] = []
                while readyHead < ready.count {
                    let head = ready[readyHead]
                    if let first = group.first,
                       first.shared !== head.shared || first.delivery.attempts != head.delivery.attempts { break }
                    group.append(head)
                    readyHead += 1
                }
                batch.append(group)
            }
            if !batch.isEmpty { run(batch) }
        }
        if readyHead == ready.count { // all started (the usual case): let go of the started ones now
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
        } else if readyHead > 1024 && readyHead * 2 > ready.count { // compact now and then
            ready.removeFirst(readyHead)
            readyHead = 0
        }
        notifyIfIdle()
    }

    /// Events one job takes at most: enough that a busy server pays one hand-off to a worker, and
    /// one store write for the outcomes, per many events; few enough that both workers get work.
    static let batchLimit = 16

    private func run(_ batch: [[Pending]]) {
        jobs += batch.count
        running.withLock { running in for group in batch { running.formUnion(group.map(\.delivery.id)) } }
        var work: [(event: HookEvent, handlers: [Int])] = []
        var waiterKeys: [[Int: String]] = [] // per event: handler index → latch key, for `async = false` handlers
        var urgent = false
        for group in batch {
            let event = group[0].event
            let waited = group.filter { isSync($0.delivery.handler) } // a request waits on these
            urgent = urgent || !waited.isEmpty
            waiterKeys.append(Dictionary(waited.compactMap { item in item.handler.map { ($0, event.id + "#" + item.delivery.handler) } },
                                         uniquingKeysWith: { first, _ in first }))
            work.append((HookEvent(id: event.id, type: RecordEventType(rawValue: event.type) ?? .created, collection: event.collection,
                                   recordID: event.recordID, data: event.data, oldData: event.oldData, timestamp: event.timestamp,
                                   attempt: group[0].delivery.attempts + 1, depth: event.depth),
                         group.compactMap(\.handler)))
        }
        let (hooks, keys) = (hooks, waiterKeys)
        Task {
            let startedAt = Timestamp.now()
            let outcomes = await hooks.deliver(work, urgent: urgent) { position, outcome in
                if let key = keys[position][outcome.handler] { self.syncWaiters.withLock { $0.removeValue(forKey: key) }?.countDown() }
            }
            await finished(batch, outcomes: outcomes, startedAt: startedAt)
        }
    }

    private func finished(_ batch: [[Pending]], outcomes: [[HookOutcome]], startedAt: String) async {
        let now = clock.now()
        let records = zip(batch, outcomes).map { group, outcomes in
            group.enumerated().map { position, item in attemptOutcome(item, at: position, outcomes, startedAt: startedAt, now: now) }
        }
        do {
            try await store.async.recordAttempts(records.flatMap { $0 })
        } catch {
            // Unrecorded attempts stay pending in the store: the next start takes them up again.
            logger.error("cannot record hook deliveries", metadata: ["error": .string("\(error)")])
        }
        running.withLock { running in for group in batch { running.subtract(group.map(\.delivery.id)) } }
        for (group, records) in zip(batch, records) {
            for (item, record) in zip(group, records) { advance(item, record, now: now) }
        }
        jobs -= batch.count
        startReady()
    }

    /// How one delivery's attempt went, as the store records it. `position`: the item's in its
    /// group, where its outcome usually is (the handlers run in the group's order).
    private func attemptOutcome(_ item: Pending, at position: Int, _ outcomes: [HookOutcome], startedAt: String, now: Int64) -> AttemptOutcome {
        // Fields are read from the item one by one: a copy of the whole delivery retains its strings.
        let (id, attempt) = (item.delivery.id, item.delivery.attempts + 1)
        let outcome = item.handler.flatMap { index in
            position < outcomes.count && outcomes[position].handler == index ? outcomes[position] : outcomes.first { $0.handler == index }
        }
        guard let outcome else {
            return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: 0,
                                  error: "handler \(item.delivery.handler) is no longer registered", status: .dead, nextAttemptAt: nil)
        }
        let milliseconds = Double(outcome.duration.components.seconds) * 1000 + Double(outcome.duration.components.attoseconds) / 1e15
        guard let error = outcome.error else {
            return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: milliseconds,
                                  error: nil, status: .succeeded, nextAttemptAt: nil)
        }
        let retry = attempt < item.delivery.maxAttempts
        return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: milliseconds,
                              error: error.message, status: retry ? .failed : .dead,
                              nextAttemptAt: retry ? now + retrySchedule[min(attempt - 1, retrySchedule.count - 1)] : nil)
    }

    /// Moves a delivery's lane on once its attempt is recorded: the next one becomes ready, or
    /// this one waits for its retry.
    private func advance(_ item: Pending, _ record: AttemptOutcome, now: Int64) {
        if isSync(item.delivery.handler) { // its handler is gone
            syncWaiters.withLock { $0.removeValue(forKey: item.event.id + "#" + item.delivery.handler) }?.countDown()
        }
        if record.status == .failed { // stays the head of its lane
            item.delivery.status = .failed
            item.delivery.attempts = record.attempt
            item.delivery.nextAttemptAt = record.nextAttemptAt
            item.delivery.lastError = record.error
            scheduleRetry(item, at: record.nextAttemptAt ?? now)
            return
        }
        if let next = item.next {
            ready.append(next)
            item.next = nil
        } else {
            laneTails.removeValue(forKey: item.lane)
        }
        if record.status == .dead { deadLetter(item, attempt: record.attempt, error: record.error) }
    }

    /// Whether `handler` has `order = "collection"` (usually none has: no hashing then).
    private func isCollectionOrdered(_ handler: String) -> Bool {
        !collectionOrderKeys.isEmpty && collectionOrderKeys.contains(handler)
    }

    /// Whether `handler` has `async = false` (usually none has: no hashing then).
    private func isSync(_ handler: String) -> Bool {
        !syncHandlerKeys.isEmpty && syncHandlerKeys.contains(handler)
    }

    private func scheduleRetry(_ item: Pending, at due: Int64) {
        let clock = clock
        let task = Task {
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            self.retryDue(item) // the task runs on the actor
        }
        retryTasks[item.delivery.id] = (task, item)
    }

    private func retryDue(_ item: Pending) {
        guard retryTasks.removeValue(forKey: item.delivery.id) != nil else { return }
        ready.append(item)
        startReady()
    }

    private func deadLetter(_ item: Pending, attempt: Int, error: String?) {
        let delivery = item.delivery
        logger.error("hook delivery is dead", metadata: [
            "delivery_id": .stringConvertible(delivery.id), "handler": .string(delivery.handler), "event_id": .string(delivery.eventID),
            "attempts": .stringConvertible(attempt), "error": .string(error ?? ""),
        ])
        var failed = delivery.json
        failed["status"] = "dead"
        failed["attempts"] = .int(Int64(attempt))
        failed["last_error"] = error.map { .string($0) } ?? .null
        let event = item.event
        let payload: JSONObject = [
            "type": "hook.failed", "id": .string(delivery.eventID), "delivery": .object(failed),
            "event": .object([
                "id": .string(event.id), "type": .string(event.type), "collection_name": .string(event.collection),
                "record_id": .string(event.recordID), "data": .object(event.data),
                "old_data": event.oldData.map { .object($0) } ?? .null, "timestamp": .string(event.timestamp),
            ]),
        ]
        let hooks = hooks
        Task { await hooks.deliverFailure(payload) }
    }

    private func notifyIfIdle() {
        guard jobs == 0, readyHead == ready.count, !idleWaiters.isEmpty else { return }
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}

/// Opens once counted down to zero (or forced open); `wait` returns once it is open.
final class Latch: Sendable {
    /// Waits until the latch opens or `limit` has passed.
    func wait(atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                try? await Task.sleep(for: limit)
                self.open()
            }
            await group.next()
            group.cancelAll()
            open()
        }
    }

    private struct State {
        var remaining: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(remaining: count))
    }

    func countDown() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.remaining -= 1
            guard state.remaining <= 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func open() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.remaining = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if state.remaining <= 0 { return true }
                state.waiter = continuation
                return false
            }
            if open { continuation.resume() }
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
