import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Group commit on PostgreSQL: every write of the store (records, collections, requeues and
/// purges; not delivery outcomes, see `recordAttempts`) runs on the writer's own connections,
/// and writes that wait while a transaction runs share the next one. So commits cost one WAL
/// flush per group, event sequences are handed out in commit order, and the committed-event sink
/// hears of events in that order.
///
/// An operation refuses by throwing a `StoreError` after its checks and before it changes
/// anything, so the group goes on without it. A statement PostgreSQL itself fails aborts the
/// transaction: the group rolls back and each of its operations runs again alone, so only the
/// one at fault fails (a `Refusal` it threw becomes its `StoreError`).
///
/// Connections are opened on first use and again after they break; while the server is away
/// each group fails at once with `unavailable`, nothing written.
///
/// Round trips are what a group costs (see CONTRIBUTING, "The PostgreSQL engine"), so:
/// - record inserts, most writes, are one statement for all of a group's (see `PostgresInserts`),
///   before its other operations;
/// - two connections take turns, a group's statements running beside the previous group's
///   COMMIT (see `drain`);
/// - the writer's task runs on its connections' event loop, a thread of the writers' own: an
///   answer resumes the writer on the thread that read it, instead of handing it to Swift's
///   cooperative threads and back, or waiting behind the HTTP connections on the server's loops.
///
/// A group always runs inside BEGIN and COMMIT, even a single statement: its rows arrive before
/// an implicit transaction commits, and no write is acknowledged before its commit.
///
/// Across nodes, sequences follow commit order per record (an update or delete locks the
/// record's row before it takes its `nextval`), which is the order deliveries keep (see
/// `DeliveryClaims`).
final class PostgresWriter: Sendable {
    typealias Operation<Value> = @Sendable (PostgresConnection) async throws -> Value

    private struct State {
        var tickets: [any PostgresQueuedOperation] = []
        var draining = false
        var connections: [PostgresConnection?] = [nil, nil]
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

    /// Closes the connections (the store is going away).
    func close() async {
        let connections = state.withLock { state -> [PostgresConnection?] in
            defer { state.connections = [nil, nil] }
            return state.connections
        }
        for connection in connections { try? await connection?.close() }
    }

    /// Takes the waiting tickets; with `stopping`, ends the drain if there are none.
    private func take(stopping: Bool) -> [any PostgresQueuedOperation] {
        state.withLock { state in
            let taken = state.tickets
            state.tickets = []
            if taken.isEmpty && stopping { state.draining = false }
            return taken
        }
    }

    /// Runs the groups, two connections taking turns: a group's statements run while the
    /// previous group's COMMIT (a WAL flush) is under way on the other connection, and its own
    /// COMMIT is sent once that one has ended. So commits, and the hand-over of their results,
    /// keep the order of the groups, and sequences, taken in that order, follow commit order.
    private func drain() async {
        var previous: Task<Void, Never>?
        var turn = 0
        while true {
            var batch = take(stopping: false)
            if batch.isEmpty {
                await previous?.value
                previous = nil
                batch = take(stopping: true)
                if batch.isEmpty { return }
            }
            batchCount.add(1, ordering: .relaxed)
            operationCount.add(batch.count, ordering: .relaxed)
            turn += 1
            switch await execute(batch, slot: turn % 2) {
            case .ran(let connection, let committing):
                await previous?.value
                previous = Task(executorPreference: executor) { await self.commit(committing, on: connection) }
            case .failed:
                continue
            case .rolledBack:
                // The group's operations again, each alone, after the previous group, so only the
                // one at fault fails.
                await previous?.value
                previous = nil
                for ticket in batch {
                    if case .ran(let connection, let committing) = await execute([ticket], slot: turn % 2) {
                        await commit(committing, on: connection)
                    }
                }
            }
        }
    }

    /// What became of a group's statements.
    private enum Execution {
        /// They ran: COMMIT on `connection`, then hand over to the tickets in this order.
        case ran(PostgresConnection, [any PostgresQueuedOperation])
        /// Every ticket has its answer, a failure (the connection broke, or a group of one failed).
        case failed
        /// A statement failed and the group was rolled back: it is to run again, each operation alone.
        case rolledBack
    }

    /// BEGIN and the group's statements on connection `slot`.
    private func execute(_ batch: [any PostgresQueuedOperation], slot: Int) async -> Execution {
        let connection: PostgresConnection
        do {
            connection = try await self.connection(slot)
        } catch {
            let failure = StoreError(postgres: error)
            for ticket in batch { ticket.fail(failure) }
            return .failed
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
                let sequences = outcomes.map { (try? $0.get())?.event?.sequence ?? 0 }
                committing += round.indices.sorted { sequences[$0] < sequences[$1] }.map { round[$0] }
            }
            for ticket in others { try await ticket.run(connection) }
        } catch {
            let failure = StoreError(postgres: error)
            if case .unavailable = failure {
                fail(batch, failure, droppingConnection: connection)
                return .failed
            }
            _ = try? await connection.query("ROLLBACK", logger: logger)
            guard batch.count > 1 else {
                batch[0].fail(failure)
                return .failed
            }
            return .rolledBack
        }
        return .ran(connection, committing + others)
    }

    /// COMMITs the group that `tickets` ran in and hands over their results.
    private func commit(_ tickets: [any PostgresQueuedOperation], on connection: PostgresConnection) async {
        do {
            try await connection.query("COMMIT", logger: logger)
        } catch {
            // A COMMIT that fails is a lost connection in practice: nothing here defers checks.
            fail(tickets, StoreError(postgres: error), droppingConnection: connection)
            return
        }
        commits?(tickets.count)
        for ticket in tickets { ticket.committed() }
    }

    /// The connection broke: the transaction rolled back, unless it broke during the COMMIT
    /// itself, after PostgreSQL made it durable. Then the callers hear 503 for writes that landed
    /// (as after any timeout), and their events reach the sink only at the next start, which
    /// takes up every unfinished delivery.
    private func fail(_ tickets: [any PostgresQueuedOperation], _ failure: StoreError, droppingConnection connection: PostgresConnection) {
        logger.warning("lost the database connection", metadata: ["error": .string(failure.description)])
        dropConnection(connection)
        for ticket in tickets { ticket.fail(failure) }
    }

    /// The writer's connection `slot` (0 or 1), opened if there is none or it closed.
    private func connection(_ slot: Int) async throws -> PostgresConnection {
        if let open = state.withLock({ $0.connections[slot] }), !open.isClosed { return open }
        let id = connectionCount.add(1, ordering: .relaxed).newValue
        let connection = try await PostgresConnection.connect(
            on: executor.loop, configuration: configuration, id: id, logger: logger).get()
        state.withLock { $0.connections[slot] = connection }
        return connection
    }

    private func dropConnection(_ connection: PostgresConnection) {
        state.withLock { state in
            for slot in state.connections.indices where state.connections[slot] === connection { state.connections[slot] = nil }
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
