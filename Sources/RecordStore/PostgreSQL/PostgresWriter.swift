import Logging
import NIOCore
import NIOPosix
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
/// The writer's task runs on its connection's event loop, a thread of the writers' own: each
/// statement of a group is a round trip, and an answer then resumes the writer on the thread that
/// read it, instead of handing it to Swift's cooperative threads and back, or waiting behind the
/// HTTP connections that share the server's event loops.
///
/// Record inserts, most writes, are stored together: one statement for all of a group's (see
/// `PostgresInserts`), before its other operations. Always inside BEGIN and COMMIT, even alone:
/// a statement's rows arrive before its implicit transaction has committed, and a write is not
/// acknowledged before that.
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
    /// The node whose deliveries inserts claim.
    private let node: String
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

    init(configuration: PostgresConnection.Configuration, node: String, events: (any CommittedEventSink)?,
         commits: (@Sendable (Int) -> Void)? = nil, logger: Logger) {
        self.configuration = configuration
        self.node = node
        executor = EventLoopTaskExecutor(Self.thread.next())
        self.events = events
        self.commits = commits
        self.logger = logger
    }

    /// Where writers' connections live (one thread: a writer runs one statement at a time).
    private static let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// (transactions, operations) so far: operations > transactions means group commit works.
    var statistics: (batches: Int, operations: Int) {
        (batchCount.load(ordering: .relaxed), operationCount.load(ordering: .relaxed))
    }

    /// Runs `operation` in a write transaction, maybe shared, and returns its result once that
    /// transaction has committed; `onCommit` then runs first, in commit order.
    func perform<Value: Sendable>(_ operation: @escaping Operation<Value>,
                                  onCommit: (@Sendable (Value) -> Void)? = nil) async throws(StoreError) -> Value {
        try await enqueue { PostgresTicket(operation, continuation: $0, onCommit: onCommit) }
    }

    /// A record write: its event, if it stored one, goes to the sink once committed.
    func performWrite(_ operation: @escaping Operation<WriteResult>) async throws(StoreError) -> WriteResult {
        try await enqueue { PostgresTicket(operation, continuation: $0, onCommit: self.sinkEvent) }
    }

    /// A record insert, stored with the group's other inserts; its event goes to the sink as
    /// `performWrite`'s does.
    func performInsert(_ insert: PostgresInsert) async throws(StoreError) -> WriteResult {
        try await enqueue { PostgresInsertTicket(insert, ticket: CommitTicket(continuation: $0, onCommit: self.sinkEvent)) }
    }

    private var sinkEvent: (@Sendable (WriteResult) -> Void)? {
        guard let events else { return nil }
        return { result in
            if let event = result.event { events.committed(event, result.deliveries) }
        }
    }

    private func enqueue<Value: Sendable>(
        _ ticket: @escaping (CheckedContinuation<Result<Value, StoreError>, Never>) -> any PostgresQueuedOperation
    ) async throws(StoreError) -> Value {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, StoreError>, Never>) in
            let ticket = ticket(continuation)
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
        // Inserts first, in rounds of distinct records (a repeated one meets the first in the next).
        var rounds: [[PostgresInsertTicket]] = []
        var others: [any PostgresStatementOperation] = []
        var roundOf: [RecordKey: Int] = [:]
        for ticket in batch {
            guard let insert = ticket as? PostgresInsertTicket else {
                if let other = ticket as? any PostgresStatementOperation { others.append(other) }
                continue
            }
            let key = RecordKey(collection: insert.insert.record.collection, id: insert.insert.record.id)
            let round = roundOf[key].map { $0 + 1 } ?? 0
            roundOf[key] = round
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(insert)
        }
        var committing: [any PostgresQueuedOperation] = []
        do {
            try await connection.query("BEGIN", logger: logger)
            for round in rounds {
                let outcomes = try await PostgresInserts.store(round.map(\.insert), node: node, connection, logger)
                for (ticket, outcome) in zip(round, outcomes) { ticket.ticket.keep(outcome) }
                // Commit order is sequence order; sequences come from one statement in no given order.
                committing += zip(round, outcomes).sorted { (try? $0.1.get().event?.sequence) ?? 0 < (try? $1.1.get().event?.sequence) ?? 0 }
                    .map(\.0)
            }
            for ticket in others { try await ticket.run(connection) }
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
        for ticket in committing + others { ticket.committed() }
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
    func committed()
    func fail(_ error: StoreError)
}

/// A queued operation that runs its own statements.
private protocol PostgresStatementOperation: PostgresQueuedOperation {
    /// Runs the operation and keeps its outcome (a `StoreError` refusal included) until the
    /// transaction ends; throws what must abort the transaction.
    func run(_ connection: PostgresConnection) async throws
}

private final class PostgresTicket<Value: Sendable>: PostgresStatementOperation {
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

/// A queued record insert (see `PostgresInserts`); alone, it is a group of one.
private final class PostgresInsertTicket: PostgresQueuedOperation {
    let insert: PostgresInsert
    let ticket: CommitTicket<WriteResult>

    init(_ insert: PostgresInsert, ticket: CommitTicket<WriteResult>) {
        self.insert = insert
        self.ticket = ticket
    }

    func committed() { ticket.committed() }
    func fail(_ error: StoreError) { ticket.fail(error) }
}

private struct RecordKey: Hashable {
    let collection: String
    let id: String
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
