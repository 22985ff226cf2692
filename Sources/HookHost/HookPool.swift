import Foundation
import Logging
import LuaRuntime

/// Runs handlers on a pool of Lua states, each owned by a thread of its own, so that a Lua state
/// is only ever touched by one thread at a time and a slow handler never blocks Swift's
/// cooperative threads (which serve HTTP). Any task may dispatch into it concurrently.
public final class HookPool: Sendable {
    public let catalog: HookCatalog
    private let queue = HookJobQueue()

    /// Starts one worker thread per loaded Lua state.
    public init(_ hooks: LoadedHooks) {
        catalog = hooks.catalog
        for (number, runtime) in hooks.runtimes.enumerated() {
            let worker = HookWorker(runtime: runtime, queue: queue)
            let thread = Thread { worker.run() }
            thread.name = "moonbase-hooks-\(number)"
            thread.start()
        }
    }

    /// Whether any handler of `phase` matches the event (so the caller can skip a dispatch).
    public func hasHandlers(_ phase: HookPhase, _ type: RecordEventType, collection: String) -> Bool {
        !catalog.matching(phase, type, collection: collection).isEmpty
    }

    /// Runs the matching before-handlers and says whether and with what data the write goes ahead.
    public func runBefore(_ event: HookEvent) async -> BeforeOutcome {
        let handlers = catalog.matching(.before, event.type, collection: event.collection)
        if handlers.isEmpty { return .proceed(event.data) }
        return await withCheckedContinuation { continuation in
            queue.push { runtime in continuation.resume(returning: runtime.runBefore(event, handlers: handlers)) }
        }
    }

    /// Hands the event to the matching after-handlers and returns once those registered with
    /// `async = false` have run; the others go on in the background.
    public func runAfter(_ event: HookEvent) async {
        let handlers = catalog.matching(.after, event.type, collection: event.collection)
        if handlers.isEmpty { return }
        guard let lastWaited = handlers.last(where: { !catalog.handlers[$0].async }) else {
            queue.push { runtime in runtime.runAfter(event, handlers: handlers) }
            return
        }
        await withCheckedContinuation { continuation in
            queue.push { runtime in
                runtime.runAfter(event, handlers: handlers) { index, _ in
                    if index == lastWaited { continuation.resume() }
                }
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

/// Owns one runtime on one thread.
private final class HookWorker: @unchecked Sendable { // the runtime is touched only by this worker's thread
    let runtime: HookRuntime
    let queue: HookJobQueue

    init(runtime: HookRuntime, queue: HookJobQueue) {
        self.runtime = runtime
        self.queue = queue
    }

    func run() {
        while let job = queue.pop() {
            job(runtime)
            queue.finished()
        }
    }
}

typealias HookJob = @Sendable (HookRuntime) -> Void

/// A queue of jobs shared by the workers: whichever worker is free takes the next job.
final class HookJobQueue: @unchecked Sendable { // every field is guarded by `condition`
    private let condition = NSCondition()
    private var jobs: [HookJob] = []
    private var head = 0
    private var unfinished = 0
    private var closed = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    func push(_ job: @escaping HookJob) {
        condition.lock()
        jobs.append(job)
        unfinished += 1
        condition.signal()
        condition.unlock()
    }

    /// The next job, waiting for one; nil once the queue is closed.
    func pop() -> HookJob? {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count && !closed { condition.wait() }
        if head == jobs.count { return nil }
        let job = jobs[head]
        head += 1
        if head > 1024 && head * 2 > jobs.count { // compact now and then instead of shifting on every pop
            jobs.removeFirst(head)
            head = 0
        }
        return job
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
