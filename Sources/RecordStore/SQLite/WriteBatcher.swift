import GRDB
import Synchronization

/// Group commit for record writes (and the outbox's other writes: attempts, requeues, purges).
///
/// A commit costs more than the insert it carries, so writes that are waiting while another batch
/// is being written share the next transaction. There is no extra thread: operations are queued,
/// and whoever gets the next turn on GRDB's serial writer runs everything queued so far in one
/// transaction and hands each caller its own outcome.
///
/// Callers queue their operation and schedule a turn only if none is pending, then suspend; so
/// any number of concurrent requests share a turn without holding a thread.
///
/// Operations must fail without side effects when they throw a `StoreError` (a refused write
/// leaves the batch going on). Any other error aborts the transaction and fails the whole batch.
final class WriteBatcher: Sendable {
    /// One caller's work inside the shared transaction. A thrown `StoreError` refuses this
    /// operation alone (it must have changed nothing); any other error fails the whole batch.
    typealias Operation<Value> = @Sendable (Database) throws -> Value

    private struct Queue {
        var tickets: [any QueuedOperation] = []
        /// An async turn is scheduled and has not drained the queue yet.
        var turnScheduled = false
    }

    private let writer: any DatabaseWriter
    /// Told of each committed write that stored an event, on the writer, in commit order.
    private let events: (any CommittedEventSink)?
    private let queue = Mutex(Queue())
    /// How many transactions ran and how many operations they carried (for tests and benchmarks).
    private let batchCount = Atomic<Int>(0)
    private let operationCount = Atomic<Int>(0)
    /// Told the number of operations of each committed transaction, on the writer.
    private let commits: (@Sendable (Int) -> Void)?

    init(writer: any DatabaseWriter, events: (any CommittedEventSink)?, commits: (@Sendable (Int) -> Void)? = nil) {
        self.writer = writer
        self.events = events
        self.commits = commits
    }

    /// (transactions, operations) so far.
    var statistics: (batches: Int, operations: Int) {
        (batchCount.load(ordering: .relaxed), operationCount.load(ordering: .relaxed))
    }

    /// Runs `operation` in a write transaction, possibly shared with other callers', and returns
    /// its result once that transaction has committed. Suspends meanwhile.
    ///
    /// Not cancellable on purpose: the transaction is shared, and interrupting it would fail the
    /// other callers' writes too.
    func perform<Value: Sendable>(_ operation: @escaping Operation<Value>) async throws(StoreError) -> Value {
        try await perform(operation, onCommit: nil)
    }

    /// `perform` for a record write: once committed, its event (if it stored one) goes to the
    /// sink, on the writer, in commit order.
    func performWrite(_ operation: @escaping Operation<WriteResult>) async throws(StoreError) -> WriteResult {
        guard let events else { return try await perform(operation, onCommit: nil) }
        return try await perform(operation) { result in
            if let event = result.event { events.committed(event, result.deliveries) }
        }
    }

    private func perform<Value: Sendable>(_ operation: @escaping Operation<Value>,
                                          onCommit: (@Sendable (Value) -> Void)?) async throws(StoreError) -> Value {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, StoreError>, Never>) in
            let ticket = Ticket(operation, continuation: continuation, onCommit: onCommit)
            let mustSchedule = queue.withLock { queue in
                queue.tickets.append(ticket)
                if queue.turnScheduled { return false }
                queue.turnScheduled = true
                return true
            }
            if mustSchedule {
                writer.asyncWriteWithoutTransaction { db in
                    self.runQueued(db)
                }
            }
        }
        return try outcome.get()
    }

    private func runQueued(_ db: Database) {
        let batch = queue.withLock { queue -> [any QueuedOperation] in
            queue.turnScheduled = false
            let taken = queue.tickets
            queue.tickets = []
            return taken
        }
        if batch.isEmpty { return }
        batchCount.add(1, ordering: .relaxed)
        operationCount.add(batch.count, ordering: .relaxed)

        do {
            // Cached BEGIN/COMMIT statements rather than `db.inTransaction`, which compiles both
            // each time: a visible share of a one-insert batch.
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            for ticket in batch {
                try ticket.run(db)
            }
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            if db.isInsideTransaction {
                try? db.execute(sql: "ROLLBACK TRANSACTION")
            }
            // Rolled back: even the operations that succeeded were not stored.
            let failure = StoreError(wrapping: error)
            for ticket in batch {
                ticket.fail(failure)
            }
            return
        }
        commits?(batch.count)
        for ticket in batch {
            ticket.committed()
        }
    }
}

/// A queued operation, whatever its result type.
private protocol QueuedOperation: Sendable {
    /// Runs the operation and keeps its outcome (a refusal included) until the transaction ends.
    /// Throws only errors that must abort the transaction.
    func run(_ db: Database) throws
    /// The transaction committed: hands over the kept outcome.
    func committed()
    /// The transaction was rolled back: every operation in it fails with `error`.
    func fail(_ error: StoreError)
}

private final class Ticket<Value: Sendable>: QueuedOperation {
    let operation: WriteBatcher.Operation<Value>
    let ticket: CommitTicket<Value>

    init(_ operation: @escaping WriteBatcher.Operation<Value>, continuation: CheckedContinuation<Result<Value, StoreError>, Never>,
         onCommit: (@Sendable (Value) -> Void)?) {
        self.operation = operation
        ticket = CommitTicket(continuation: continuation, onCommit: onCommit)
    }

    func run(_ db: Database) throws { try ticket.run { try operation(db) } }
    func committed() { ticket.committed() }
    func fail(_ error: StoreError) { ticket.fail(error) }
}
