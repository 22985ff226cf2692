import Synchronization

/// The requests waiting for `async = false` handlers (SPEC section 6): a write registers a latch
/// before it commits, and the worker that runs such a handler on its event counts it down. Any
/// thread may call in: a lock guards the table.
final class SyncWaiters: Sendable {
    private struct Key: Hashable {
        let eventID: String
        let handler: String
    }

    /// Keys of the after-handlers with `async = false`: usually none, so most writes skip the
    /// table without looking at their handlers. A reload changes them.
    private let syncKeys: Mutex<Set<String>>
    private let latches = Mutex<[Key: Latch]>([:])

    init(syncKeys: Set<String>) {
        self.syncKeys = Mutex(syncKeys)
    }

    /// The `async = false` handlers of a new generation.
    func update(syncKeys keys: Set<String>) {
        syncKeys.withLock { $0 = keys }
    }

    /// Before a write: a latch the request can wait on until the `async = false` handlers among
    /// `handlers` (the write's handler keys) have run on the event `eventID`; nil when there are none.
    func expect(eventID: String, handlers: some Sequence<String>) -> Latch? {
        let syncKeys = syncKeys.withLock { $0 }
        if syncKeys.isEmpty { return nil }
        let waited = handlers.filter { syncKeys.contains($0) }
        if waited.isEmpty { return nil }
        let latch = Latch(count: waited.count)
        latches.withLock { latches in for handler in waited { latches[Key(eventID: eventID, handler: handler)] = latch } }
        return latch
    }

    /// The write for `eventID` was refused: nobody will run its handlers.
    func cancel(eventID: String, handlers: some Sequence<String>) {
        let cancelled = latches.withLock { latches in
            handlers.compactMap { latches.removeValue(forKey: Key(eventID: eventID, handler: $0)) }
        }
        for latch in cancelled { latch.open() }
    }

    /// Whether a request waits for the handler with key `handler` to run on the event `eventID`.
    func isWaiting(eventID: String, handler: String) -> Bool {
        latches.withLock { $0[Key(eventID: eventID, handler: handler)] != nil }
    }

    /// The handler with key `handler` is done with the event `eventID` (run, or found gone).
    func handled(eventID: String, handler: String) {
        latches.withLock { $0.removeValue(forKey: Key(eventID: eventID, handler: handler)) }?.countDown()
    }
}

/// Opens once counted down to zero (or forced open); `wait` returns once it is open.
final class Latch: Sendable {
    private struct State {
        var remaining: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(remaining: count))
    }

    /// Waits until the latch opens or `limit` has passed.
    func wait(atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Waits until the latch opens or the task is cancelled (which opens it).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state -> Bool in
                    if state.remaining <= 0 { return true }
                    state.waiter = continuation
                    return false
                }
                if open { continuation.resume() }
            }
        } onCancel: {
            open()
        }
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
}
