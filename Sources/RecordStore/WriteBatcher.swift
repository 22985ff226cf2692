import GRDB
import Synchronization

/// Group commit for record writes.
///
/// A commit costs more than the insert it carries, so writes that are waiting while another batch
/// is being written share the next transaction. There is no extra thread: operations are queued,
/// and whoever gets the next turn on GRDB's serial writer runs everything queued so far in one
/// transaction and hands each caller its own outcome.
///
/// - Async callers (`perform(_:) async`) queue their operation and schedule a turn only if none is
///   pending, then suspend; so any number of concurrent requests share a turn without holding a
///   thread. This is where batching happens under load.
/// - Blocking callers queue their operation and then take a turn of their own. If an earlier turn
///   already ran their operation, theirs finds the queue empty — the writer runs turns one after
///   the other, so the outcome is in place before the turn starts. With blocking callers, batches
///   only form when more threads are writing than there are cores.
///
/// Operations must fail without side effects when they throw a `StoreError` (a refused write
/// leaves the batch going on). Any other error aborts the transaction and fails the whole batch.
final class WriteBatcher: Sendable {
    typealias Operation = @Sendable (Database) throws -> Record
    typealias Outcome = Result<Record, StoreError>

    private final class Ticket: Sendable {
        let operation: Operation
        /// Resumed with the outcome, for async callers.
        let continuation: CheckedContinuation<Outcome, Never>?
        /// Holds the outcome, for blocking callers.
        let outcome = Mutex<Outcome?>(nil)

        init(_ operation: @escaping Operation, continuation: CheckedContinuation<Outcome, Never>?) {
            self.operation = operation
            self.continuation = continuation
        }

        func deliver(_ result: Outcome) {
            if let continuation {
                continuation.resume(returning: result)
            } else {
                outcome.withLock { $0 = result }
            }
        }
    }

    private struct Queue {
        var tickets: [Ticket] = []
        /// An async turn is scheduled and has not drained the queue yet.
        var turnScheduled = false
    }

    private let writer: any DatabaseWriter
    private let queue = Mutex(Queue())
    /// How many transactions ran and how many operations they carried (for tests and benchmarks).
    private let batchCount = Atomic<Int>(0)
    private let operationCount = Atomic<Int>(0)

    init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// (transactions, operations) so far.
    var statistics: (batches: Int, operations: Int) {
        (batchCount.load(ordering: .relaxed), operationCount.load(ordering: .relaxed))
    }

    /// Runs `operation` in a write transaction, possibly shared with other callers', and returns
    /// its result once that transaction has committed. Blocks the calling thread meanwhile.
    func perform(_ operation: @escaping Operation) throws(StoreError) -> Record {
        let ticket = Ticket(operation, continuation: nil)
        queue.withLock { $0.tickets.append(ticket) }
        writer.writeWithoutTransaction { db in
            self.runQueued(db)
        }
        guard let outcome = ticket.outcome.withLock({ $0 }) else {
            throw .database("the write was not performed")
        }
        return try outcome.get()
    }

    /// Runs `operation` in a write transaction, possibly shared with other callers', and returns
    /// its result once that transaction has committed. Suspends meanwhile.
    ///
    /// Not cancellable on purpose: the transaction is shared, and interrupting it would fail the
    /// other callers' writes too.
    func perform(_ operation: @escaping Operation) async throws(StoreError) -> Record {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let ticket = Ticket(operation, continuation: continuation)
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
        let batch = queue.withLock { queue -> [Ticket] in
            queue.turnScheduled = false
            let taken = queue.tickets
            queue.tickets = []
            return taken
        }
        if batch.isEmpty { return }
        batchCount.add(1, ordering: .relaxed)
        operationCount.add(batch.count, ordering: .relaxed)

        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(batch.count)
        do {
            // Cached BEGIN/COMMIT statements rather than `db.inTransaction`, which compiles both
            // each time: a visible share of a one-insert batch.
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            for ticket in batch {
                do {
                    outcomes.append(.success(try ticket.operation(db)))
                } catch let refused as StoreError {
                    outcomes.append(.failure(refused))
                }
            }
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            if db.isInsideTransaction {
                try? db.execute(sql: "ROLLBACK TRANSACTION")
            }
            // Rolled back: even the operations that succeeded were not stored.
            let failure = StoreError(wrapping: error)
            for ticket in batch {
                ticket.deliver(.failure(failure))
            }
            return
        }
        for (ticket, outcome) in zip(batch, outcomes) {
            ticket.deliver(outcome)
        }
    }
}
