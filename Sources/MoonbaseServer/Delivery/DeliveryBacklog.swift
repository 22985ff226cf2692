import Synchronization

/// Keeps memory bounded when handlers are slower than writes. Committed events come in here, in
/// commit order, from the store's writer; past `capacity` events held in memory (here and in the
/// lanes), later events are left in the store (where they are anyway) and read back from it in
/// commit order, a part at a time, as the backlog goes down. Start-up takes up what the last run
/// left the same way: the backlog starts out spilled from the first event on.
///
/// Called from the writer's thread and from the scheduler: a lock guards the state.
final class DeliveryBacklog<Element: Sendable>: Sendable {
    private struct State {
        /// Committed events on their way to the lanes, in commit order, with their sequences.
        var inbox: [(element: Element, sequence: Int64)] = []
        var drainScheduled = false
        /// Set while committed events are left in the store: the first of them. Later ones are
        /// not taken either, so they are read back in commit order.
        var spilledFrom: Int64? = 0
        /// Events up to this sequence were read from the store: their arrival here is a repeat.
        var readThrough: Int64 = -1
        /// The last event left in the store while spilled (committed after a read may have looked).
        var leftThrough: Int64 = -1
        /// Events (record lane groups) in the lanes, as last reported.
        var queued = 0
        /// The most events held at once.
        var peak = 0
        /// How many times the backlog filled up and later events were left in the store.
        var spills = 0
    }

    /// Events held in memory at most; beyond, they wait in the store only.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// How `accept` took an event.
    enum Admission: Equatable {
        /// Into the inbox; the caller schedules a drain (none is scheduled yet).
        case drain
        /// Into the inbox, whose drain is already scheduled.
        case inbox
        /// Left in the store: this event filled the backlog; the ones after it stay there too.
        case spilled(held: Int)
        /// Left in the store, behind earlier ones.
        case leftInStore
    }

    /// A just-committed event (in commit order).
    func accept(_ element: Element, sequence: Int64) -> Admission {
        state.withLock { state in
            if state.spilledFrom != nil {
                state.leftThrough = max(state.leftThrough, sequence)
                return .leftInStore
            }
            let held = state.inbox.count + state.queued
            if held >= capacity {
                state.spilledFrom = sequence
                state.leftThrough = sequence
                state.spills += 1
                return .spilled(held: held)
            }
            state.peak = max(state.peak, held + 1)
            state.inbox.append((element, sequence))
            defer { state.drainScheduled = true }
            return state.drainScheduled ? .inbox : .drain
        }
    }

    /// The inbox's events for the lanes, in commit order, less those already read from the store.
    func takeInbox() -> ArraySlice<(element: Element, sequence: Int64)> {
        state.withLock { state in
            state.drainScheduled = false
            var taken: [(element: Element, sequence: Int64)] = []
            swap(&taken, &state.inbox)
            let readThrough = state.readThrough
            let fresh = taken.drop { $0.sequence <= readThrough } // a prefix: the inbox is in commit order
            state.queued += fresh.count // counted here until the lanes report them
            return fresh
        }
    }

    /// The lanes hold `queued` events now.
    func report(queued: Int) {
        state.withLock { state in
            state.queued = queued
            state.peak = max(state.peak, queued)
        }
    }

    /// Events held in memory now, and how many times the backlog has spilled (for `/metrics`).
    var figures: (held: Int, spills: Int) {
        state.withLock { ($0.inbox.count + $0.queued, $0.spills) }
    }

    /// Whether committed events wait in the inbox for the scheduler to take them.
    var inboxIsEmpty: Bool { state.withLock { $0.inbox.isEmpty } }

    /// The first event left in the store, while some are.
    var spilledFrom: Int64? { state.withLock { $0.spilledFrom } }

    /// How many events a read from the store may bring in now; nil when it should wait until
    /// half the backlog is free (reading in bigger parts, less often).
    var roomToRefill: Int? {
        state.withLock { state in
            let room = capacity - state.queued - state.inbox.count
            return room * 2 >= capacity ? room : nil
        }
    }

    /// Events from `next` on are still in the store only.
    func spilled(from next: Int64) {
        state.withLock { $0.spilledFrom = next }
    }

    /// A read of the store returned every event of the spilled part it found, through `sequence`.
    /// Events are taken in again, unless one was left in the store after it meanwhile (committed
    /// after the read looked): then false, and the part from `sequence + 1` on is read next.
    /// Events the read returned that arrive in the inbox later are dropped as repeats.
    func takeEventsAgain(readThrough sequence: Int64) -> Bool {
        state.withLock { state in
            if state.leftThrough > sequence {
                state.spilledFrom = sequence + 1
                return false
            }
            state.spilledFrom = nil
            state.readThrough = max(state.readThrough, sequence)
            return true
        }
    }

    /// The most events held in memory at once.
    var peak: Int { state.withLock { $0.peak } }
}
