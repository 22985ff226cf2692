import DequeModule
import Foundation
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// Runs handlers on a pool of Lua states, each owned by a thread of its own, so that a Lua state
/// is only ever touched by one thread at a time and a slow handler never blocks Swift's
/// cooperative threads (which serve HTTP). Any task may dispatch into it concurrently.
///
/// A handler that waits for the host (an HTTP request, say) does not hold its thread: its
/// operation runs as a task, the state runs other handlers meanwhile, and the handler goes on
/// on its own state's thread once the operation is done.
///
/// A watchdog keeps the capacity: a worker still running one handler call at twice the
/// wall-clock budget (stuck in C, where no budget reaches) is given up. Whatever waited on its
/// state fails as on any budget error, the state is never used again (its thread and memory are
/// left to it, and counted in `abandoned`), and a fresh state on a fresh thread takes its place.
/// A before-hook or route that no worker starts within the wall-clock budget is answered 503
/// "hooks busy".
public final class HookPool: Sendable {
    public let catalog: HookCatalog
    private let queue: HookJobQueue
    private let watchdog: HookWatchdog?
    /// How long a before-run may wait for a worker; nil: for ever.
    private let startWithin: Duration?
    private let logger: Logger

    /// Starts one worker thread per loaded Lua state, and the watchdog if calls have a
    /// wall-clock budget.
    public init(_ hooks: LoadedHooks) {
        catalog = hooks.catalog
        let queue = HookJobQueue()
        self.queue = queue
        let budget = hooks.runtimes[0].state.limits.wallClock
        startWithin = budget > .zero ? budget : nil
        logger = hooks.runtimes[0].logger
        let workers = hooks.runtimes.map { HookWorker(runtime: $0, queue: queue) }
        watchdog = budget > .zero ? HookWatchdog(budget: budget, queue: queue, catalog: catalog, logger: hooks.runtimes[0].logger) : nil
        for worker in workers { worker.start() }
        watchdog?.start(watching: workers)
    }

    /// Runs the before-handlers matching an event and says whether and with what data the write
    /// goes ahead; nil when none matches. The event is only built when some handler matches the
    /// type and collection; their `when` and `changed` are decided on it before any Lua runs.
    public func runBefore(_ type: RecordEventType, collection: String, _ makeEvent: () -> RecordEvent) async -> BeforeOutcome? {
        let match = catalog.match(.before, type, collection: collection)
        if match.handlers.isEmpty { return nil }
        let event = makeEvent()
        let handlers = match.isConditional ? catalog.admitted(match.handlers, data: event.data, oldData: event.oldData) : match.handlers
        if handlers.isEmpty { return nil }
        return await runUrgently(what: "before-hooks", metadata: [
            "event": .string(event.type.rawValue), "collection": .string(event.collection), "event_id": .string(event.id),
        ]) { runtime, done in runtime.runBefore(event, handlers: handlers, completion: done) }
    }

    /// Runs route `index` (a catalog index) on `request`, the `req` table of SPEC section 14.
    public func runRoute(_ index: Int, request: JSONObject) async -> RouteOutcome {
        let route = catalog.handlers[index]
        return await runUrgently(what: "route", metadata: [
            "file": .string(route.file), "line": .stringConvertible(route.line), "route": .string(route.collectionLabel),
        ]) { runtime, done in runtime.runRoute(index, request: request, completion: done) }
    }

    /// Runs a job a client waits for on the next free worker. If the worker is given up, the
    /// outcome is `failed` with the watchdog's error; if no worker starts it within the
    /// wall-clock budget, it is 503 "hooks busy" (and `what`, with `metadata`, is logged).
    private func runUrgently<Outcome: UrgentOutcome>(
        what: String, metadata: Logger.Metadata, _ start: @escaping @Sendable (HookRuntime, @escaping (Outcome) -> Void) -> Void
    ) async -> Outcome {
        let logger = logger
        return await withCheckedContinuation { continuation in
            let reply = JobReply(()) { _, error in continuation.resume(returning: .failed(error.message)) }
            let expiry = startWithin.map { within in
                HookJobQueue.Expiry(after: within) {
                    logger.warning("no hook worker started the \(what) within the wall-clock budget; answered 503 hooks busy", metadata: metadata)
                    reply.answer { _ in continuation.resume(returning: .busy) }
                }
            }
            queue.push(urgent: true, expiry: expiry) { worker in
                worker.track(reply)
                start(worker.runtime) { outcome in
                    reply.answer { _ in continuation.resume(returning: outcome) }
                    worker.untrack(reply)
                }
            }
        }
    }

    /// Runs after-handlers (catalog indices, in order) on an event and returns how each went.
    /// `onEach` hears of each handler as soon as it has run (on a worker thread), so a caller can
    /// let a response go before the event's later handlers finish. `urgent` wakes a worker at
    /// once; other work is gathered for a moment so one wake-up serves several events.
    public func deliver(_ event: RecordEvent, to handlers: [Int], urgent: Bool,
                        onEach: @escaping @Sendable (HookOutcome) -> Void = { _ in }) async -> [HookOutcome] {
        await deliver([(event, handlers)], urgent: urgent) { _, outcome in onEach(outcome) }[0]
    }

    /// `deliver` for several events in one job: one hand-off to a worker serves them all, which
    /// is what a busy server needs. The events run one after another on that worker (those whose
    /// handlers wait for the host overlap); `onEach` is told the event's position with each outcome.
    ///
    /// If the watchdog gives the worker up, every handler that has not reported fails with the
    /// watchdog's error (they are retried as any failed delivery is).
    public func deliver(_ batch: [(event: RecordEvent, handlers: [Int])], urgent: Bool,
                        onEach: @escaping @Sendable (Int, HookOutcome) -> Void) async -> [[HookOutcome]] {
        if batch.isEmpty { return [] }
        let handlerLists = batch.map(\.handlers)
        return await withCheckedContinuation { continuation in
            let reply = JobReply(OutcomeLists(handlerLists)) { outcomes, error in
                var outcomes = outcomes
                for (position, handlers) in handlerLists.enumerated() {
                    for handler in handlers.dropFirst(outcomes.lists[position].count) {
                        let outcome = HookOutcome(handler: handler, error: error, duration: .zero)
                        outcomes.lists[position].append(outcome)
                        onEach(position, outcome)
                    }
                }
                continuation.resume(returning: outcomes.lists)
            }
            queue.push(urgent: urgent) { worker in
                worker.track(reply)
                for (position, item) in batch.enumerated() {
                    worker.runtime.runAfter(item.event, handlers: item.handlers, afterEach: { outcome in
                        reply.update { $0.lists[position].append(outcome) }
                        onEach(position, outcome)
                    }, completion: {
                        reply.update { $0.unfinished -= 1 }
                        reply.answer(when: { $0.unfinished == 0 }) { continuation.resume(returning: $0.lists) }
                        if reply.isAnswered { worker.untrack(reply) }
                    })
                }
            }
        }
    }

    /// Runs the `on_hook_failed` handlers with the failed delivery as their event.
    public func deliverFailure(_ payload: JSONObject) async {
        let handlers = catalog.failureHandlers
        if handlers.isEmpty { return }
        await withCheckedContinuation { continuation in
            let reply = JobReply(()) { _, _ in continuation.resume() }
            queue.push(urgent: false) { worker in
                worker.track(reply)
                worker.runtime.runFailureHandlers(payload, handlers: handlers) {
                    reply.answer { _ in continuation.resume() }
                    worker.untrack(reply)
                }
            }
        }
    }

    /// Runs cron hook `index` (a catalog index) with its run's event and says how it went (a
    /// worker given up by the watchdog fails it with the watchdog's error).
    public func runCron(_ index: Int, event: JSONObject) async -> HookOutcome {
        await withCheckedContinuation { continuation in
            let reply = JobReply(()) { _, error in continuation.resume(returning: HookOutcome(handler: index, error: error, duration: .zero)) }
            queue.push(urgent: false) { worker in
                worker.track(reply)
                worker.runtime.runCron(index, event: event) { outcome in
                    reply.answer { _ in continuation.resume(returning: outcome) }
                    worker.untrack(reply)
                }
            }
        }
    }

    /// The states the watchdog gave up, oldest first.
    public var abandoned: [AbandonedState] { watchdog?.abandoned ?? [] }

    /// Returns once every queued handler has run (or the calling task is cancelled).
    public func waitUntilIdle() async {
        await queue.waitUntilIdle()
    }

    /// Lets queued work finish, then stops the worker threads and the watchdog. A cancelled task
    /// stops waiting at once; workers still running then stop after their job.
    public func shutdown() async {
        await queue.waitUntilIdle()
        queue.close()
        watchdog?.stop()
    }
}

/// The outcome of a job a client waits for: it can fail (the details are for the log) or find
/// the hooks busy (503, no worker started it in time).
protocol UrgentOutcome: Sendable {
    static func failed(_ detail: String) -> Self
    static var busy: Self { get }
}

extension BeforeOutcome: UrgentOutcome {
    static var busy: BeforeOutcome { .rejected(message: "hooks busy", status: 503) }
}

extension RouteOutcome: UrgentOutcome {
    static var busy: RouteOutcome { .rejected(message: "hooks busy", status: 503) }
}

/// A Lua state the watchdog gave up: it may still be running on its thread, and holds its memory.
public struct AbandonedState: Sendable {
    /// The handler (catalog index) that was running.
    public var handler: Int
    /// When it was given up.
    public var at: Date
    let state: UncheckedSendable<LuaState>

    /// Bytes the state holds now.
    public var memoryBytes: Int { state.value.memoryInUse }
}

/// What a worker's state is doing, for the watchdog: nothing, a handler call (which one, and
/// which call), or nothing ever again because the watchdog gave it up. One atomic word, so a call
/// that ends and the watchdog that gives up on it cannot both win.
final class HookActivity: Sendable {
    /// 0: idle. -1: abandoned. Otherwise the call's number (38 bits, wrapping) and the handler's
    /// catalog index + 1 (24 bits).
    private let word = Atomic<Int>(0)
    /// Counts calls, so that the watchdog tells a long call from two short ones of one handler.
    /// Only the worker's thread writes it.
    private let calls = Atomic<Int>(0)

    private static let handlerBits = 24
    private static let callMask = (1 << 38) - 1

    func begin(_ handler: Int) {
        let call = (calls.load(ordering: .relaxed) &+ 1) & Self.callMask
        calls.store(call, ordering: .relaxed)
        word.store((call << Self.handlerBits) | (handler + 1), ordering: .releasing)
    }

    /// Ends the running call; if the watchdog gave this state up meanwhile, never returns.
    func end() {
        let running = word.load(ordering: .relaxed)
        if running != -1 && word.compareExchange(expected: running, desired: 0, ordering: .acquiringAndReleasing).exchanged { return }
        while true { Thread.sleep(forTimeInterval: 86_400) } // everything it served was answered without it
    }

    /// What the state does now: a call (an opaque value that changes from one call to the next), or nil.
    var current: Int? {
        let value = word.load(ordering: .acquiring)
        return value > 0 ? value : nil
    }

    /// Gives up the state if it still runs `call`; returns the handler it runs, or nil if the call ended.
    func abandon(_ call: Int) -> Int? {
        guard word.compareExchange(expected: call, desired: -1, ordering: .acquiringAndReleasing).exchanged else { return nil }
        return (call & ((1 << Self.handlerBits) - 1)) - 1
    }
}

/// A job's way back to whoever waits for it, taken exactly once: by the worker when the job ends,
/// or by the watchdog when it gives the job's state up (or a before-run waited too long for a
/// worker). `Progress` is what the job has done so far, which the one who gives up reports.
final class JobReply<Progress: Sendable>: AbandonableJob {
    private let state: Mutex<(progress: Progress, answered: Bool)>
    private let giveUp: @Sendable (Progress, LuaError) -> Void

    init(_ progress: Progress, giveUp: @escaping @Sendable (Progress, LuaError) -> Void) {
        state = Mutex((progress, false))
        self.giveUp = giveUp
    }

    /// Records progress; nothing once the reply was taken.
    func update(_ change: (inout Progress) -> Void) {
        state.withLock { state in if !state.answered { change(&state.progress) } }
    }

    var isAnswered: Bool { state.withLock { $0.answered } }

    /// Takes the reply to answer with the progress, if no one has and `ready` says it is time.
    func answer(when ready: (Progress) -> Bool = { _ in true }, _ respond: (Progress) -> Void) {
        let taken: Progress? = state.withLock { state in
            guard !state.answered && ready(state.progress) else { return nil }
            state.answered = true
            return state.progress
        }
        if let taken { respond(taken) }
    }

    func abandon(_ error: LuaError) {
        answer { giveUp($0, error) }
    }
}

/// A job the watchdog can fail, whatever it answers.
protocol AbandonableJob: AnyObject, Sendable {
    func abandon(_ error: LuaError)
}

/// The outcomes of a batch's events, gathered on a worker thread while some handlers may wait.
private struct OutcomeLists: Sendable {
    var lists: [[HookOutcome]]
    var unfinished: Int

    init(_ handlers: [[Int]]) {
        lists = handlers.map { list in
            var outcomes: [HookOutcome] = []
            outcomes.reserveCapacity(list.count)
            return outcomes
        }
        unfinished = handlers.count
    }
}

/// Owns one runtime on one thread.
final class HookWorker: @unchecked Sendable { // the runtime is touched only by this worker's thread (the watchdog reads its lets)
    let id: Int
    let runtime: HookRuntime
    let queue: HookJobQueue
    /// The jobs started on this state and not answered yet: some may wait for the host.
    private let jobs = Mutex<[ObjectIdentifier: any AbandonableJob]>([:])

    init(runtime: HookRuntime, queue: HookJobQueue) {
        self.runtime = runtime
        self.queue = queue
        id = queue.addWorker()
        runtime.waiter = { [queue, id] call, then in
            // The waiting handler counts as unfinished work until its resumption is queued.
            queue.beginWaiting()
            let resume = UncheckedSendable(then)
            Task {
                let resumption = await call.suspension.operation(call.deadline)
                queue.push(toWorker: id) { _ in resume.value(resumption) }
                queue.finished()
            }
        }
    }

    func start() {
        let thread = Thread { [self] in
            while let job = queue.pop(worker: id) {
                job(self)
                queue.finished()
            }
        }
        thread.name = "moonbase-hooks-\(id)"
        thread.start()
    }

    func track(_ job: some AbandonableJob) {
        jobs.withLock { $0[ObjectIdentifier(job)] = job }
    }

    func untrack(_ job: some AbandonableJob) {
        _ = jobs.withLock { $0.removeValue(forKey: ObjectIdentifier(job)) }
    }

    /// Hands over the jobs this state still owes an answer (the watchdog fails them).
    func takeJobs() -> [any AbandonableJob] {
        jobs.withLock { jobs in
            defer { jobs = [:] }
            return Array(jobs.values)
        }
    }
}

/// Carries a value that is only ever used in a way its owner makes safe across threads.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

typealias HookJob = @Sendable (HookWorker) -> Void

/// Watches the workers of a pool: every eighth of the wall-clock budget it looks at what each
/// runs, and gives up a worker seen running the same handler call for twice the budget. It also
/// answers the before-runs no worker started within the budget.
final class HookWatchdog: Sendable {
    private let budget: Duration
    private let queue: HookJobQueue
    private let catalog: HookCatalog
    private let logger: Logger
    private let watched = Mutex<(workers: [HookWorker], abandoned: [AbandonedState], stopped: Bool)>(([], [], false))
    /// Where the watchdog sleeps between looks; `stop` wakes it.
    private let sleep = NSCondition()

    init(budget: Duration, queue: HookJobQueue, catalog: HookCatalog, logger: Logger) {
        self.budget = budget
        self.queue = queue
        self.catalog = catalog
        self.logger = logger
    }

    var abandoned: [AbandonedState] { watched.withLock { $0.abandoned } }

    func start(watching workers: [HookWorker]) {
        watched.withLock { $0.workers = workers }
        let thread = Thread { [self] in watch() }
        thread.name = "moonbase-hooks-watchdog"
        thread.start()
    }

    func stop() {
        watched.withLock { $0.stopped = true }
        sleep.lock()
        sleep.broadcast()
        sleep.unlock()
    }

    private func watch() {
        let period = max(budget / 8, .milliseconds(5))
        var seen: [ObjectIdentifier: (call: Int, since: ContinuousClock.Instant)] = [:]
        while true {
            sleep.lock()
            _ = sleep.wait(until: Date(timeIntervalSinceNow: period.timeInterval))
            sleep.unlock()
            guard let workers = watched.withLock({ $0.stopped ? nil : $0.workers }) else { return }
            let now = ContinuousClock.now
            queue.expire(now: now)
            for worker in workers {
                let key = ObjectIdentifier(worker)
                guard let call = worker.runtime.activity.current else {
                    seen[key] = nil
                    continue
                }
                guard let previous = seen[key], previous.call == call else {
                    seen[key] = (call, now)
                    continue
                }
                if now - previous.since >= budget * 2, let handler = worker.runtime.activity.abandon(call) {
                    seen[key] = nil
                    replace(worker, runningHandler: handler, for: now - previous.since)
                }
            }
        }
    }

    /// Gives up `worker` (its thread still runs `handler`), fails what waits on its state and
    /// starts a fresh state on a fresh thread.
    private func replace(_ worker: HookWorker, runningHandler handler: Int, for duration: Duration) {
        let described = catalog.handlers[handler]
        let error = LuaError(kind: .budget, message: "\(described.file):\(described.line): hook exceeded its time budget "
            + "(\(budget) wall clock): its Lua state was still busy after \(duration) and was abandoned")
        catalog.recordCall(handler, error: error.message)
        queue.retire(worker.id)
        let abandoned = AbandonedState(handler: handler, at: Date(), state: UncheckedSendable(worker.runtime.state))
        let total = watched.withLock { watched in
            watched.workers.removeAll { $0 === worker }
            watched.abandoned.append(abandoned)
            return watched.abandoned.reduce(0) { $0 + $1.memoryBytes }
        }
        logger.error("hook worker abandoned", metadata: [
            "file": .string(described.file), "line": .stringConvertible(described.line), "handler": .string(described.name),
            "error": .string(error.message), "memory": .stringConvertible(abandoned.memoryBytes),
            "abandoned_memory": .stringConvertible(total),
        ])
        for job in worker.takeJobs() { job.abandon(error) }
        let thread = Thread { [self] in startReplacement(for: worker.runtime) }
        thread.name = "moonbase-hooks-replacement"
        thread.start()
    }

    /// Makes the fresh state (on a thread of its own: loading every hook file takes a while) and
    /// puts its worker to work.
    private func startReplacement(for runtime: HookRuntime) {
        do {
            let worker = HookWorker(runtime: try runtime.fresh(), queue: queue)
            let started = watched.withLock { watched in
                if !watched.stopped { watched.workers.append(worker) }
                return !watched.stopped
            }
            if started { worker.start() }
        } catch {
            logger.error("cannot make a Lua state to replace an abandoned one", metadata: ["error": .string(error.message)])
        }
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension HookRuntime {
    /// A new runtime with the same files loaded, its handlers matching the catalog's. A file that
    /// now loads differently (registration that depends on time or randomness) keeps its
    /// handlers out of the new state, and says so in the log.
    func fresh() throws(LuaError) -> HookRuntime {
        let runtime = try HookRuntime(files: files, directory: directory, limits: state.limits, modules: modules, logger: logger)
        runtime.catalog = catalog
        runtime.refs = Array(repeating: nil, count: catalog.handlers.count)
        for (entry, load) in zip(catalog.files, runtime.loads) {
            let matches = entry.status == .loaded && load.error == nil && load.handlers.count == entry.handlerIndices.count
                && zip(load.handlers, entry.handlerIndices).allSatisfy { loaded, index in
                    var handler = loaded.handler
                    handler.key = catalog.handlers[index].key
                    return handler == catalog.handlers[index]
                }
            if matches {
                for (loaded, index) in zip(load.handlers, entry.handlerIndices) { runtime.refs[index] = loaded.ref }
            } else {
                for loaded in load.handlers { runtime.state.release(loaded.ref) }
                if entry.status == .loaded {
                    logger.error("hook file loads differently in a fresh Lua state; its handlers do not run there",
                                 metadata: ["file": .string(entry.file), "error": .string(load.error?.message ?? "other handlers")])
                }
            }
        }
        return runtime
    }
}

/// A queue of jobs shared by the workers: whichever worker is free takes the next job.
///
/// Waking a sleeping thread costs more than running a few no-op handlers, so background jobs
/// (after-hooks nobody waits for) wake a worker only when none is already on its way, and that
/// worker lingers briefly before starting so that one wake serves the events that arrive
/// meanwhile. Urgent jobs (before-hooks, `async = false` handlers) always wake a worker at once.
final class HookJobQueue: @unchecked Sendable { // every field is guarded by `condition`
    /// What happens to a job no worker has started by a deadline.
    struct Expiry {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void

        init(after delay: Duration, _ expire: @escaping @Sendable () -> Void) {
            deadline = .now + delay
            self.expire = expire
        }
    }

    private struct Job {
        var run: HookJob
        var urgent: Bool
        var expiry: Expiry?
    }

    /// How long a worker woken for background work waits for more before it starts.
    static let linger: TimeInterval = 0.001

    private let condition = NSCondition()
    private var jobs = Deque<Job>()
    /// Jobs only one worker may run (resuming a handler of its state), by worker id; nil for a
    /// worker given up, whose jobs are dropped.
    private var own: [Deque<HookJob>?] = []
    private var unfinished = 0
    private var closed = false
    private var backgroundWakePending = false
    private var idleWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    /// Makes room for a new worker; returns its id.
    func addWorker() -> Int {
        condition.withLock {
            own.append([])
            return own.count - 1
        }
    }

    /// Forgets a worker given up while it ran a job: that job and the resumptions queued for its
    /// state will never finish.
    func retire(_ worker: Int) {
        let waiters = condition.withLock {
            unfinished -= 1 + (own[worker]?.count ?? 0)
            own[worker] = nil
            return takeIdleWaitersIfIdle()
        }
        for waiter in waiters { waiter.resume() }
    }

    func push(urgent: Bool, expiry: Expiry? = nil, _ job: @escaping HookJob) {
        condition.lock()
        jobs.append(Job(run: job, urgent: urgent, expiry: expiry))
        unfinished += 1
        if urgent || !backgroundWakePending {
            backgroundWakePending = !urgent
            condition.signal()
        }
        condition.unlock()
    }

    /// Queues a job for worker `worker` only; it runs before the shared jobs. Dropped if the
    /// worker was given up.
    func push(toWorker worker: Int, _ job: @escaping HookJob) {
        condition.lock()
        if own[worker] != nil {
            own[worker]!.append(job)
            unfinished += 1
            condition.broadcast() // `signal` might wake another worker
        }
        condition.unlock()
    }

    /// Counts a handler waiting off its thread as unfinished work; `finished` ends it.
    func beginWaiting() {
        condition.lock()
        unfinished += 1
        condition.unlock()
    }

    /// The next job of worker `worker`, waiting for one; nil once the queue is closed and empty.
    func pop(worker: Int) -> HookJob? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            var waited = false
            while jobs.isEmpty && own[worker]!.isEmpty && !closed {
                backgroundWakePending = false // the next background job must wake someone
                condition.wait()
                waited = true
            }
            if let job = own[worker]!.popFirst() { return job }
            guard let next = jobs.first else { return nil }
            if waited && !next.urgent && !closed {
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.linger))
                backgroundWakePending = false
                if jobs.isEmpty { continue } // another worker took it meanwhile
            }
            return jobs.removeFirst().run
        }
    }

    /// Takes out the jobs no worker started by their deadline, and lets them expire.
    func expire(now: ContinuousClock.Instant) {
        let expired: [Expiry] = condition.withLock {
            let isExpired = { (job: Job) in job.expiry.map { $0.deadline <= now } ?? false }
            let expired = jobs.filter(isExpired).map { $0.expiry! }
            if expired.isEmpty { return [] }
            jobs.removeAll(where: isExpired)
            unfinished -= expired.count
            return expired
        }
        for expiry in expired { expiry.expire() }
        let waiters = condition.withLock { takeIdleWaitersIfIdle() }
        for waiter in waiters { waiter.resume() }
    }

    func finished() {
        let waiters = condition.withLock {
            unfinished -= 1
            return takeIdleWaitersIfIdle()
        }
        for waiter in waiters { waiter.resume() }
    }

    private func takeIdleWaitersIfIdle() -> [CheckedContinuation<Void, Never>] {
        guard unfinished == 0 else { return [] }
        defer { idleWaiters = [:] }
        return Array(idleWaiters.values)
    }

    /// Returns once no job is queued, running or waiting, or once the calling task is cancelled.
    func waitUntilIdle() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                condition.lock()
                if unfinished == 0 || Task.isCancelled {
                    condition.unlock()
                    continuation.resume()
                } else {
                    idleWaiters[id] = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            condition.withLock { idleWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
