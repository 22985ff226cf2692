import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Group commit on PostgreSQL: every write of the store (records, collections, the outbox's
/// attempts, requeues and purges) runs on one connection of the writer's own, and writes that
/// wait while a transaction runs share the next one. So commits cost one round trip and one WAL
/// flush per group, event sequences are handed out in commit order, and the committed-event sink
/// hears of events in that order.
///
/// An operation refuses by throwing a `StoreError` after its checks and before it changes
/// anything, so the group goes on without it. A statement PostgreSQL itself fails aborts the
/// transaction: the group rolls back and each of its operations runs again alone, so only the
/// one at fault fails (a `Refusal` it threw becomes its `StoreError`).
///
/// The connection is opened on first use and again after it breaks; while the server is away
/// each group fails at once with `unavailable`, nothing written.
///
/// The writer's task runs on its connection's event loop: each statement of a group is a round
/// trip, and an answer then resumes the writer on the thread that read it, instead of handing it
/// to Swift's cooperative threads and back for the next statement.
///
/// One group at a time per node. Across nodes, sequences follow commit order per record (an
/// update or delete locks the record's row before it takes its `nextval`), which is the order
/// deliveries keep (see `DeliveryClaims`).
final class PostgresWriter: Sendable {
    typealias Operation<Value> = @Sendable (PostgresConnection) async throws -> Value

    private struct State {
        var tickets: [any PostgresQueuedOperation] = []
        var draining = false
        var connection: PostgresConnection?
    }

    private let configuration: PostgresConnection.Configuration
    /// Where the connection lives and the writer runs.
    private let executor: EventLoopTaskExecutor
    private let events: (any CommittedEventSink)?
    /// Told how many writes each committed transaction carried.
    private let commits: (@Sendable (Int) -> Void)?
    private let logger: Logger
    private let state = Mutex(State())
    private let connectionCount = Atomic<Int>(0)
    private let batchCount = Atomic<Int>(0)
    private let operationCount = Atomic<Int>(0)

    init(configuration: PostgresConnection.Configuration, events: (any CommittedEventSink)?,
         commits: (@Sendable (Int) -> Void)? = nil, logger: Logger) {
        self.configuration = configuration
        executor = EventLoopTaskExecutor(PostgresClient.defaultEventLoopGroup.any())
        self.events = events
        self.commits = commits
        self.logger = logger
    }

    /// (transactions, operations) so far: operations > transactions means group commit works.
    var statistics: (batches: Int, operations: Int) {
        (batchCount.load(ordering: .relaxed), operationCount.load(ordering: .relaxed))
    }

    /// Runs `operation` in a write transaction, maybe shared, and returns its result once that
    /// transaction has committed; `onCommit` then runs first, in commit order.
    func perform<Value: Sendable>(_ operation: @escaping Operation<Value>,
                                  onCommit: (@Sendable (Value) -> Void)? = nil) async throws(StoreError) -> Value {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, StoreError>, Never>) in
            let ticket = PostgresTicket(operation, continuation: continuation, onCommit: onCommit)
            let mustStart = state.withLock { state in
                state.tickets.append(ticket)
                if state.draining { return false }
                state.draining = true
                return true
            }
            if mustStart { Task(executorPreference: executor) { await self.drain() } }
        }
        return try outcome.get()
    }

    /// A record write: its event, if it stored one, goes to the sink once committed.
    func performWrite(_ operation: @escaping Operation<WriteResult>) async throws(StoreError) -> WriteResult {
        guard let events else { return try await perform(operation) }
        return try await perform(operation) { result in
            if let event = result.event { events.committed(event, result.deliveries) }
        }
    }

    /// Closes the connection (the store is going away).
    func close() async {
        let connection = state.withLock { state -> PostgresConnection? in
            defer { state.connection = nil }
            return state.connection
        }
        try? await connection?.close()
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [any PostgresQueuedOperation] in
                let taken = state.tickets
                state.tickets = []
                if taken.isEmpty { state.draining = false }
                return taken
            }
            if batch.isEmpty { return }
            batchCount.add(1, ordering: .relaxed)
            operationCount.add(batch.count, ordering: .relaxed)
            await run(batch)
        }
    }

    private func run(_ batch: [any PostgresQueuedOperation]) async {
        let connection: PostgresConnection
        do {
            connection = try await self.connection()
        } catch {
            let failure = StoreError(postgres: error)
            for ticket in batch { ticket.fail(failure) }
            return
        }
        do {
            try await connection.query("BEGIN", logger: logger)
            for ticket in batch { try await ticket.run(connection) }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            let failure = StoreError(postgres: error)
            if case .unavailable = failure {
                // The connection broke: the transaction rolled back, unless it broke during the
                // COMMIT itself, after PostgreSQL made it durable. Then the callers hear 503 for
                // writes that landed (as after any timeout), and their events reach the sink only
                // at the next start, which takes up every unfinished delivery.
                logger.warning("lost the database connection", metadata: ["error": .string(failure.description)])
                dropConnection(connection)
                for ticket in batch { ticket.fail(failure) }
                return
            }
            _ = try? await connection.query("ROLLBACK", logger: logger)
            if batch.count == 1 {
                batch[0].fail(failure)
            } else {
                // Rolled back: each operation again, alone, so only the one at fault fails.
                for ticket in batch { await run([ticket]) }
            }
            return
        }
        commits?(batch.count)
        for ticket in batch { ticket.committed() }
    }

    /// The writer's connection, opened if there is none or it closed.
    private func connection() async throws -> PostgresConnection {
        if let open = state.withLock({ $0.connection }), !open.isClosed { return open }
        let id = connectionCount.add(1, ordering: .relaxed).newValue
        let connection = try await PostgresConnection.connect(
            on: executor.loop, configuration: configuration, id: id, logger: logger).get()
        state.withLock { $0.connection = connection }
        return connection
    }

    private func dropConnection(_ connection: PostgresConnection) {
        state.withLock { state in
            if state.connection === connection { state.connection = nil }
        }
        Task { try? await connection.close() }
    }
}

/// A queued operation, whatever its result type.
private protocol PostgresQueuedOperation: Sendable {
    /// Runs the operation and keeps its outcome (a `StoreError` refusal included) until the
    /// transaction ends; throws what must abort the transaction.
    func run(_ connection: PostgresConnection) async throws
    func committed()
    func fail(_ error: StoreError)
}

private final class PostgresTicket<Value: Sendable>: PostgresQueuedOperation {
    let operation: PostgresWriter.Operation<Value>
    let ticket: CommitTicket<Value>

    init(_ operation: @escaping PostgresWriter.Operation<Value>, continuation: CheckedContinuation<Result<Value, StoreError>, Never>,
         onCommit: (@Sendable (Value) -> Void)?) {
        self.operation = operation
        ticket = CommitTicket(continuation: continuation, onCommit: onCommit)
    }

    func run(_ connection: PostgresConnection) async throws { try await ticket.run { try await operation(connection) } }
    func committed() { ticket.committed() }
    func fail(_ error: StoreError) { ticket.fail(error) }
}

/// Runs a task's jobs on one event loop (see `PostgresWriter`).
private final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
