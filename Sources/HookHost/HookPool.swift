import Foundation
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel

/// Runs handlers on a pool of Lua states, each owned by a thread of its own, so that a Lua state
/// is only ever touched by one thread at a time and a slow handler never blocks Swift's
/// cooperative threads (which serve HTTP). Any task may dispatch into it concurrently.
///
/// A handler that waits for the host (an HTTP request, say) does not hold its thread: its
/// operation runs as a task, the state runs other handlers meanwhile, and the handler goes on
/// on its own state's thread once the operation is done.
public final class HookPool: Sendable {
    public let catalog: HookCatalog
    private let queue: HookJobQueue

    /// Starts one worker thread per loaded Lua state.
    public init(_ hooks: LoadedHooks) {
        catalog = hooks.catalog
        queue = HookJobQueue(workers: hooks.runtimes.count)
        for (number, runtime) in hooks.runtimes.enumerated() {
            let worker = HookWorker(number: number, runtime: runtime, queue: queue)
            let thread = Thread { worker.run() }
            thread.name = "moonbase-hooks-\(number)"
            thread.start()
        }
    }

    /// Runs the before-handlers matching an event and says whether and with what data the write
    /// goes ahead; nil when none matches. The event is only built when some handler matches.
    public func runBefore(_ type: RecordEventType, collection: String, _ makeEvent: () -> RecordEvent) async -> BeforeOutcome? {
        let handlers = catalog.matching(.before, type, collection: collection)
        if handlers.isEmpty { return nil }
        let event = makeEvent()
        return await withCheckedContinuation { continuation in
            queue.push(urgent: true) { runtime in
                runtime.runBefore(event, handlers: handlers) { continuation.resume(returning: $0) }
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
    public func deliver(_ batch: [(event: RecordEvent, handlers: [Int])], urgent: Bool,
                        onEach: @escaping @Sendable (Int, HookOutcome) -> Void) async -> [[HookOutcome]] {
        if batch.isEmpty { return [] }
        return await withCheckedContinuation { continuation in
            queue.push(urgent: urgent) { runtime in
                let outcomes = OutcomeLists(batch.map { $0.handlers.count }) // a closure: a key path through a tuple is projected generically, per element
                for (position, item) in batch.enumerated() {
                    runtime.runAfter(item.event, handlers: item.handlers, afterEach: { outcome in
                        outcomes.lists[position].append(outcome)
                        onEach(position, outcome)
                    }, completion: {
                        outcomes.unfinished -= 1
                        if outcomes.unfinished == 0 { continuation.resume(returning: outcomes.lists) }
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
            queue.push(urgent: false) { runtime in
                runtime.runFailureHandlers(payload, handlers: handlers) { continuation.resume() }
            }
        }
    }

    /// Returns once every queued handler has run.
    public func waitUntilIdle() async {
        await queue.waitUntilIdle()
    }

    /// Lets queued work finish, then stops the worker threads.
    public func shutdown() async {
        await queue.waitUntilIdle()
        queue.close()
    }
}

/// The outcomes of a batch's events, gathered on a worker thread while some handlers may wait.
private final class OutcomeLists {
    var lists: [[HookOutcome]]
    var unfinished: Int

    init(_ counts: [Int]) {
        lists = counts.map { count in
            var list: [HookOutcome] = []
            list.reserveCapacity(count)
            return list
        }
        unfinished = counts.count
    }
}

/// Owns one runtime on one thread.
private final class HookWorker: @unchecked Sendable { // the runtime is touched only by this worker's thread
    let number: Int
    let runtime: HookRuntime
    let queue: HookJobQueue

    init(number: Int, runtime: HookRuntime, queue: HookJobQueue) {
        self.number = number
        self.runtime = runtime
        self.queue = queue
        runtime.waiter = { [queue] call, then in
            // The waiting handler counts as unfinished work until its resumption is queued.
            queue.beginWaiting()
            let resume = UncheckedSendable(then)
            Task {
                let resumption = await call.suspension.operation(call.deadline)
                queue.push(toWorker: number) { _ in resume.value(resumption) }
                queue.finished()
            }
        }
    }

    func run() {
        while let job = queue.pop(worker: number) {
            job(runtime)
            queue.finished()
        }
    }
}

/// Carries a closure that is only ever called on its worker's thread across the task that waits.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

typealias HookJob = @Sendable (HookRuntime) -> Void

/// A queue of jobs shared by the workers: whichever worker is free takes the next job.
///
/// Waking a sleeping thread costs more than running a few no-op handlers, so background jobs
/// (after-hooks nobody waits for) wake a worker only when none is already on its way, and that
/// worker lingers briefly before starting so that one wake serves the events that arrive
/// meanwhile. Urgent jobs (before-hooks, `async = false` handlers) always wake a worker at once.
final class HookJobQueue: @unchecked Sendable { // every field is guarded by `condition`
    private struct Job {
        var run: HookJob
        var urgent: Bool
    }

    /// How long a worker woken for background work waits for more before it starts.
    static let linger: TimeInterval = 0.001

    private let condition = NSCondition()
    private var jobs: [Job] = []
    /// Jobs only one worker may run (resuming a handler of its state), by worker number.
    private var own: [[HookJob]]
    private var head = 0
    private var unfinished = 0
    private var closed = false
    private var backgroundWakePending = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    init(workers: Int) {
        own = Array(repeating: [], count: workers)
    }

    func push(urgent: Bool, _ job: @escaping HookJob) {
        condition.lock()
        jobs.append(Job(run: job, urgent: urgent))
        unfinished += 1
        if urgent || !backgroundWakePending {
            backgroundWakePending = !urgent
            condition.signal()
        }
        condition.unlock()
    }

    /// Queues a job for worker `worker` only; it runs before the shared jobs.
    func push(toWorker worker: Int, _ job: @escaping HookJob) {
        condition.lock()
        own[worker].append(job)
        unfinished += 1
        condition.broadcast() // `signal` might wake another worker
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
            while head == jobs.count && own[worker].isEmpty && !closed {
                backgroundWakePending = false // the next background job must wake someone
                condition.wait()
                waited = true
            }
            if !own[worker].isEmpty { return own[worker].removeFirst() }
            if head == jobs.count { return nil }
            if waited && !jobs[head].urgent && !closed {
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.linger))
                backgroundWakePending = false
                if head == jobs.count { continue } // another worker took it meanwhile
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count { // drained (the usual case): the taken jobs and what they hold go now
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024 && head * 2 > jobs.count { // compact now and then instead of shifting on every pop
                jobs.removeFirst(head)
                head = 0
            }
            return job.run
        }
    }

    func finished() {
        condition.lock()
        unfinished -= 1
        let waiters = unfinished == 0 ? idleWaiters : []
        if unfinished == 0 { idleWaiters = [] }
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            condition.lock()
            if unfinished == 0 {
                condition.unlock()
                continuation.resume()
            } else {
                idleWaiters.append(continuation)
                condition.unlock()
            }
        }
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
