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
/// finished. Deliveries of one record to one handler run one at a time, in commit order (of one
/// collection, for a handler with `order = "collection"`), and a failing one holds back that
/// handler's later deliveries for the record until it succeeds or is dead.
///
/// Two kinds of lanes keep that order. Each record has a lane of groups, the first attempts of
/// its events' deliveries in commit order: the head group runs all its handlers in one go (one
/// event table, one outcome write), which is the whole story while handlers succeed. A delivery
/// that fails, or is a retry, or finds an earlier delivery of its handler still unfinished when
/// its group reaches the head, leaves the group for a lane of its own handler and record, where
/// it runs alone behind that earlier one. Groups that are ready together share a job (one hand-off
/// to a worker, one store write). At most `maxJobs` groups are under way (run, outcome not yet
/// recorded) at any time: after a crash, at most those run twice.
///
/// Memory stays bounded when handlers are slower than writes: past `maxQueued` events waiting
/// here, committed events are left in the store (where they are anyway) and read back from it in
/// commit order, a part at a time, as the backlog goes down. Start-up takes up what the last run
/// left the same way.
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

    /// The lane of one handler (its catalog position; a negative number for a key no longer in
    /// the catalog) for one record.
    private struct HandlerLane: Hashable {
        var handler: Int
        var record: LaneRecord
    }

    /// One delivery as the scheduler tracks it.
    private struct Item {
        let id: Int64
        /// The handler's key, as stored.
        let key: String
        /// The handler's position in the catalog; nil if no handler has its key any more.
        let handler: Int?
        /// `handler`, or the number given to its unknown key.
        let laneHandler: Int
        /// Attempts made so far.
        var attempts: Int
        let maxAttempts: Int
        /// When a failed delivery is due again (ms since 1970); nil: it may run now.
        var retryAt: Int64?

        /// Whether it is a first attempt that may run with its event's others.
        var isFirst: Bool { attempts == 0 && retryAt == nil }
    }

    /// Deliveries of one event that run together: in a record lane, its first attempts; in a
    /// handler lane, exactly one delivery. Lanes are lists of these linked by `next`, in commit
    /// order; the head is running, waiting for its retry, or ready.
    private final class Group {
        let event: OutboxEvent
        let record: LaneRecord
        var items: [Item]
        /// The handler lane this group is in; nil for its record's lane.
        let handlerLane: HandlerLane?
        var next: Group?

        init(_ event: OutboxEvent, _ record: LaneRecord, _ items: [Item], handlerLane: HandlerLane? = nil) {
            self.event = event
            self.record = record
            self.items = items
            self.handlerLane = handlerLane
        }

        /// The attempt the group's deliveries are at (1 in a record lane).
        var attempt: Int { items[0].attempts + 1 }
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
    /// The last group of each record lane that has any (a lane goes once its last group is done).
    private var recordLanes: [LaneRecord: Group] = [:]
    /// The last delivery of each handler lane that has any: usually none.
    private var handlerLanes: [HandlerLane: Group] = [:]
    /// Numbers for the keys of handlers that are not in the catalog (any more), below 0.
    private var unknownHandlers: [String: Int] = [:]
    /// Lane heads that can start now, in the order they became ready.
    private var ready: [Group] = []
    private var readyHead = 0
    /// Deliveries waiting for their retry time (each the head of its handler lane), by delivery id.
    private var retryTasks: [Int64: (task: Task<Void, Never>, group: Group)] = [:]
    private var purgeTask: Task<Void, Never>?
    private var jobs = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Deliveries whose attempt is under way (dispatched, outcome not yet recorded).
    private let running = Mutex<Set<Int64>>([])
    /// Requests waiting for an `async = false` handler, by "event id#handler key"; opened from the worker.
    private let syncWaiters = Mutex<[String: Latch]>([:])
    /// Committed events on their way in, in commit order.
    private let inbox = Mutex(Inbox())
    /// Events (record lane groups) waiting here at most; beyond, they wait in the store only.
    private let maxQueued: Int
    /// Record lane groups here now (the inbox's events not counted).
    private let queued = Atomic<Int>(0)
    /// The most `queued` and the inbox held at once (tests).
    private let peakQueued = Atomic<Int>(0)
    /// A read of the store's backlog is under way: the inbox waits until it is done.
    private var refilling = false

    private struct Inbox {
        var items: [(OutboxEvent, NewDeliveries)] = []
        var drainScheduled = false
        /// Set while committed events are left in the store: the first of them. Later ones are
        /// not taken either, so they are read back in commit order.
        var spilledFrom: Int64?
        /// Events up to this sequence were read from the store: their arrival here is a repeat.
        var readThrough: Int64 = -1
    }

    init(store: RecordStore, hooks: HookPool, clock: any DeliveryClock, retrySchedule: [Duration], maxJobs: Int,
         maxQueued: Int = 10_000, logger: Logger) {
        self.store = store
        self.maxJobs = max(1, maxJobs)
        self.maxQueued = max(1, maxQueued)
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

    /// The deliveries whose attempt is under way right now.
    nonisolated var runningDeliveries: Set<Int64> {
        running.withLock { $0 }
    }

    /// Takes up what the last run left unfinished: pending deliveries run again, failed ones at
    /// their retry time. Call it before any write: the backlog is read from the store in parts,
    /// and events committed meanwhile join it there.
    func resumeUnfinished() async throws {
        inbox.withLock { $0.spilledFrom = 0 }
        let taken = try await refill()
        if taken > 0 {
            logger.info("taking up unfinished hook deliveries", metadata: ["count": .stringConvertible(taken)])
        }
    }

    /// Takes the deliveries of a just-committed event. Called by the store on its writer, in
    /// commit order; the inbox keeps that order until the actor enqueues them. While the backlog
    /// is full the event is left in the store, to be read back from there.
    nonisolated func accept(_ event: OutboxEvent, _ deliveries: NewDeliveries) {
        let mustDrain = inbox.withLock { inbox -> Bool in
            if inbox.spilledFrom != nil { return false }
            let held = inbox.items.count + queued.load(ordering: .relaxed)
            if held >= maxQueued {
                inbox.spilledFrom = event.sequence
                logger.info("hook backlog full: later events wait in the store", metadata: [
                    "backlog": .stringConvertible(held), "from_event": .stringConvertible(event.sequence),
                ])
                return false
            }
            peakQueued.max(held + 1, ordering: .relaxed)
            inbox.items.append((event, deliveries))
            defer { inbox.drainScheduled = true }
            return !inbox.drainScheduled
        }
        if mustDrain { Task { await self.drainInbox() } }
    }

    /// The most events this scheduler held at once (tests).
    nonisolated var peakBacklog: Int { peakQueued.load(ordering: .relaxed) }

    private func drainInbox() {
        if refilling { return } // the refill drains once it has enqueued the older events
        let (items, readThrough) = inbox.withLock { inbox -> ([(OutboxEvent, NewDeliveries)], Int64) in
            inbox.drainScheduled = false
            var taken: [(OutboxEvent, NewDeliveries)] = []
            swap(&taken, &inbox.items)
            return (taken, inbox.readThrough)
        }
        for (event, deliveries) in items where event.sequence > readThrough {
            enqueue(event, deliveries.indices.map { position in
                let target = deliveries.targets[position]
                return item(id: deliveries.id(at: position), key: target.handler, attempts: 0, maxAttempts: target.maxAttempts, retryAt: nil)
            })
        }
        startReady()
    }

    /// Reads events left in the store, in commit order, while there is room for them; once the
    /// store has no more, takes events in through the inbox again. Returns how many deliveries
    /// it took up.
    @discardableResult
    private func refill() async throws -> Int {
        guard !refilling else { return 0 }
        refilling = true
        defer {
            refilling = false
            drainInbox()
        }
        var taken = 0
        while let from = inbox.withLock({ $0.spilledFrom }) {
            let room = maxQueued - queued.load(ordering: .relaxed)
            guard room * 2 >= maxQueued else { break } // `finished` calls again once half is free
            let (unfinished, next) = try await store.async.unfinishedDeliveries(from: from, events: room)
            taken += enqueueUnfinished(unfinished)
            if let next {
                inbox.withLock { $0.spilledFrom = next }
                continue
            }
            // The store had nothing more when read. Events committed since were left there too:
            // take events in again, then read those; the inbox skips the ones that read returns.
            let readFrom = max(from, (unfinished.last?.delivery.eventSequence ?? from - 1) + 1)
            inbox.withLock { $0.spilledFrom = nil }
            if from > 0 { logger.info("hook backlog caught up with the store") }
            var (rest, _) = try await store.async.unfinishedDeliveries(from: readFrom, events: .max)
            // Full again meanwhile: events from there on are read back later, not now.
            if let spilled = inbox.withLock({ $0.spilledFrom }) { rest.removeAll { $0.event.sequence >= spilled } }
            taken += enqueueUnfinished(rest)
            inbox.withLock { $0.readThrough = max($0.readThrough, rest.last?.delivery.eventSequence ?? readFrom - 1) }
        }
        return taken
    }

    /// `refill` when events wait in the store (it reads only while half the backlog is free).
    private func refillIfSpilled() async {
        guard !refilling, inbox.withLock({ $0.spilledFrom != nil }) else { return }
        do {
            try await refill()
        } catch {
            // Left in the store: the next finished job, wait or start tries again.
            logger.error("cannot read hook deliveries back from the store", metadata: ["error": .string("\(error)")])
        }
    }

    /// Enqueues deliveries read from the store (by delivery id: an event's are together).
    private func enqueueUnfinished(_ unfinished: [(delivery: Delivery, event: OutboxEvent)]) -> Int {
        var start = unfinished.startIndex
        while start < unfinished.endIndex {
            let event = unfinished[start].event
            let end = unfinished[start...].firstIndex { $0.event.sequence != event.sequence } ?? unfinished.endIndex
            enqueue(event, unfinished[start..<end].map { item($0.delivery) })
            start = end
        }
        peakQueued.max(queued.load(ordering: .relaxed), ordering: .relaxed)
        startReady()
        return unfinished.count
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
            waiting.group.items[0] = item(delivery)
            ready.append(waiting.group)
        } else if let spilled = inbox.withLock({ $0.spilledFrom }), delivery.eventSequence >= spilled {
            return // still in the part of the backlog left in the store: read from there in its turn
        } else {
            enqueue(try await store.async.event(sequence: delivery.eventSequence), [item(delivery)])
        }
        startReady()
    }

    /// Returns once nothing is running or ready to run (retries waiting for their time do not count).
    func waitUntilIdle() async {
        drainInbox()
        if jobs == 0 { await refillIfSpilled() } // nothing running would call it
        if isIdle { return }
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

    // MARK: Lanes

    private func item(id: Int64, key: String, attempts: Int, maxAttempts: Int, retryAt: Int64?) -> Item {
        let handler = handlerIndex[key]
        return Item(id: id, key: key, handler: handler, laneHandler: handler ?? unknownHandler(key), attempts: attempts,
                    maxAttempts: maxAttempts, retryAt: retryAt)
    }

    /// A delivery read from the store (pending or failed).
    private func item(_ delivery: Delivery) -> Item {
        item(id: delivery.id, key: delivery.handler, attempts: delivery.attempts, maxAttempts: delivery.maxAttempts,
             retryAt: delivery.status == .failed ? delivery.nextAttemptAt : nil)
    }

    /// Puts an event's deliveries (in target order) at the end of their record's lane: one group,
    /// or two when some handlers keep collection order.
    private func enqueue(_ event: OutboxEvent, _ items: [Item]) {
        let record = LaneRecord(collection: event.collection, recordID: event.recordID)
        if collectionOrderKeys.isEmpty {
            enqueue(Group(event, record, items))
            return
        }
        let (ordered, others) = (items.filter { isCollectionOrdered($0.key) }, items.filter { !isCollectionOrdered($0.key) })
        if !others.isEmpty { enqueue(Group(event, record, others)) }
        if !ordered.isEmpty { enqueue(Group(event, LaneRecord(collection: event.collection, recordID: ""), ordered)) }
    }

    private func unknownHandler(_ key: String) -> Int {
        if let known = unknownHandlers[key] { return known }
        let number = -1 - unknownHandlers.count
        unknownHandlers[key] = number
        return number
    }

    private func enqueue(_ group: Group) {
        queued.add(1, ordering: .relaxed)
        if let tail = recordLanes.updateValue(group, forKey: group.record) {
            tail.next = group
        } else {
            reachedHead(group)
        }
    }

    /// `group` is the head of its record lane. Its deliveries that must run alone (retries, and
    /// those whose handler still has an earlier delivery for this record) go to their handler's
    /// lane; the rest are ready. A group left empty gives the lane to the next one at once.
    private func reachedHead(_ group: Group) {
        var head: Group? = group
        while let group = head {
            if !handlerLanes.isEmpty || !group.items.allSatisfy(\.isFirst) {
                var together: [Item] = []
                for item in group.items {
                    let lane = HandlerLane(handler: item.laneHandler, record: group.record)
                    if item.isFirst && handlerLanes[lane] == nil {
                        together.append(item)
                    } else {
                        enqueue(alone: Group(group.event, group.record, [item], handlerLane: lane))
                    }
                }
                group.items = together
            }
            if !group.items.isEmpty {
                ready.append(group)
                return
            }
            head = leaveLane(group)
        }
    }

    /// The group after `group` in its lane (record or handler), or nil once the lane is empty
    /// (and gone).
    private func leaveLane(_ group: Group) -> Group? {
        if group.handlerLane == nil { queued.subtract(1, ordering: .relaxed) }
        if let next = group.next {
            group.next = nil
            return next
        }
        if let lane = group.handlerLane {
            handlerLanes.removeValue(forKey: lane)
        } else {
            recordLanes.removeValue(forKey: group.record)
        }
        return nil
    }

    /// A delivery alone at the end of its handler lane; it starts if it is the head.
    private func enqueue(alone group: Group) {
        if let tail = handlerLanes.updateValue(group, forKey: group.handlerLane!) {
            tail.next = group
        } else {
            startAlone(group)
        }
    }

    /// The head of a handler lane: ready, or waiting for its retry time.
    private func startAlone(_ group: Group) {
        if let due = group.items[0].retryAt, due > clock.now() {
            scheduleRetry(group, at: due)
        } else {
            ready.append(group)
        }
    }

    // MARK: Running

    /// Starts ready lane heads while there is room, up to `batchLimit` groups in one job.
    private func startReady() {
        while jobs < maxJobs && readyHead < ready.count {
            let count = min(maxJobs - jobs, Self.batchLimit, ready.count - readyHead)
            run(Array(ready[readyHead..<readyHead + count]))
            readyHead += count
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

    private func run(_ batch: [Group]) {
        jobs += batch.count
        running.withLock { running in for group in batch { for item in group.items { running.insert(item.id) } } }
        var work: [(event: HookEvent, handlers: [Int])] = []
        var waiterKeys: [[Int: String]] = [] // per group: handler index → latch key, for `async = false` handlers
        var urgent = false
        for group in batch {
            let event = group.event
            let waited = syncHandlerKeys.isEmpty ? [] : group.items.filter { isSync($0.key) } // a request waits on these
            urgent = urgent || !waited.isEmpty
            waiterKeys.append(Dictionary(waited.compactMap { item in item.handler.map { ($0, event.id + "#" + item.key) } },
                                         uniquingKeysWith: { first, _ in first }))
            work.append((HookEvent(id: event.id, type: RecordEventType(rawValue: event.type) ?? .created, collection: event.collection,
                                   recordID: event.recordID, data: event.data, oldData: event.oldData, timestamp: event.timestamp,
                                   attempt: group.attempt, depth: event.depth),
                         group.items.compactMap(\.handler)))
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

    private func finished(_ batch: [Group], outcomes: [[HookOutcome]], startedAt: String) async {
        let now = clock.now()
        let records = zip(batch, outcomes).map { group, outcomes in
            group.items.indices.map { position in attemptOutcome(group.items[position], at: position, outcomes, startedAt: startedAt, now: now) }
        }
        do {
            try await store.async.recordAttempts(records.flatMap { $0 })
        } catch {
            // Unrecorded attempts stay pending in the store: the next start takes them up again.
            logger.error("cannot record hook deliveries", metadata: ["error": .string("\(error)")])
        }
        running.withLock { running in for group in batch { for item in group.items { running.remove(item.id) } } }
        for (group, records) in zip(batch, records) { advance(group, records, now: now) }
        jobs -= batch.count
        startReady()
        await refillIfSpilled()
    }

    /// How one delivery's attempt went, as the store records it. `position`: the item's in its
    /// group, where its outcome usually is (the handlers run in the group's order).
    private func attemptOutcome(_ item: Item, at position: Int, _ outcomes: [HookOutcome], startedAt: String, now: Int64) -> AttemptOutcome {
        let (id, attempt) = (item.id, item.attempts + 1)
        let outcome = item.handler.flatMap { index in
            position < outcomes.count && outcomes[position].handler == index ? outcomes[position] : outcomes.first { $0.handler == index }
        }
        guard let outcome else {
            return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: 0,
                                  error: "handler \(item.key) is no longer registered", status: .dead, nextAttemptAt: nil)
        }
        let milliseconds = Double(outcome.duration.components.seconds) * 1000 + Double(outcome.duration.components.attoseconds) / 1e15
        guard let error = outcome.error else {
            return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: milliseconds,
                                  error: nil, status: .succeeded, nextAttemptAt: nil)
        }
        let retry = attempt < item.maxAttempts
        return AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: milliseconds,
                              error: error.message, status: retry ? .failed : .dead,
                              nextAttemptAt: retry ? now + retrySchedule[min(attempt - 1, retrySchedule.count - 1)] : nil)
    }

    /// Moves the lanes on once a group's attempts are recorded: a failed delivery waits for its
    /// retry at the head of its handler lane; the next group or delivery becomes the head.
    private func advance(_ group: Group, _ records: [AttemptOutcome], now: Int64) {
        var staysHead = false
        for (position, record) in records.enumerated() {
            let item = group.items[position]
            if isSync(item.key) { // in case its handler is gone (the worker opens the others' first)
                syncWaiters.withLock { $0.removeValue(forKey: group.event.id + "#" + item.key) }?.countDown()
            }
            switch record.status {
            case .failed:
                var failed = item
                failed.attempts = record.attempt
                failed.retryAt = record.nextAttemptAt ?? now
                if group.handlerLane != nil { // alone in its lane: stays the head until its retry
                    group.items[0] = failed
                    startAlone(group)
                    staysHead = true
                } else { // leaves the group for its handler lane, where it waits for its retry time
                    enqueue(alone: Group(group.event, group.record, [failed], handlerLane: HandlerLane(handler: item.laneHandler, record: group.record)))
                }
            case .dead:
                deadLetter(item, group.event, attempt: record.attempt, error: record.error)
            default:
                break
            }
        }
        if staysHead { return }
        if let next = leaveLane(group) {
            if group.handlerLane == nil { reachedHead(next) } else { startAlone(next) }
        }
    }

    /// Whether `handler` has `order = "collection"` (usually none has: no hashing then).
    private func isCollectionOrdered(_ handler: String) -> Bool {
        !collectionOrderKeys.isEmpty && collectionOrderKeys.contains(handler)
    }

    /// Whether `handler` has `async = false` (usually none has: no hashing then).
    private func isSync(_ handler: String) -> Bool {
        !syncHandlerKeys.isEmpty && syncHandlerKeys.contains(handler)
    }

    /// `group`, alone at the head of its handler lane, runs again at `due`.
    private func scheduleRetry(_ group: Group, at due: Int64) {
        let clock = clock
        let task = Task {
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            self.retryDue(group) // the task runs on the actor
        }
        retryTasks[group.items[0].id] = (task, group)
    }

    private func retryDue(_ group: Group) {
        guard retryTasks.removeValue(forKey: group.items[0].id) != nil else { return }
        ready.append(group)
        startReady()
    }

    /// Logs a dead delivery and runs the `on_hook_failed` handlers on it.
    private func deadLetter(_ item: Item, _ event: OutboxEvent, attempt: Int, error: String?) {
        logger.error("hook delivery is dead", metadata: [
            "delivery_id": .stringConvertible(item.id), "handler": .string(item.key), "event_id": .string(event.id),
            "attempts": .stringConvertible(attempt), "error": .string(error ?? ""),
        ])
        if hooks.catalog.failureHandlers.isEmpty { return }
        let (hooks, store, logger, id) = (hooks, store, logger, item.id)
        Task {
            // The delivery as stored (its outcome was recorded before it was declared dead; the
            // outcome is set again below in case recording it failed).
            let delivery: Delivery
            do {
                delivery = try await store.async.delivery(id: id)
            } catch {
                return logger.error("cannot read a dead hook delivery", metadata: ["delivery_id": .stringConvertible(id), "error": .string("\(error)")])
            }
            var failed = delivery.json
            failed["status"] = "dead"
            failed["attempts"] = .int(Int64(attempt))
            failed["last_error"] = error.map { .string($0) } ?? .null
            let payload: JSONObject = [
                "type": "hook.failed", "id": .string(event.id), "delivery": .object(failed),
                "event": .object([
                    "id": .string(event.id), "type": .string(event.type), "collection_name": .string(event.collection),
                    "record_id": .string(event.recordID), "data": .object(event.data),
                    "old_data": event.oldData.map { .object($0) } ?? .null, "timestamp": .string(event.timestamp),
                ]),
            ]
            await hooks.deliverFailure(payload)
        }
    }

    /// Nothing running, ready, or left in the store to read back.
    private var isIdle: Bool {
        jobs == 0 && readyHead == ready.count && !refilling && inbox.withLock { $0.spilledFrom == nil }
    }

    private func notifyIfIdle() {
        guard isIdle, !idleWaiters.isEmpty else { return }
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
