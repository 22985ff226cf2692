import Synchronization

/// A caller of a group commit (`WriteBatcher` on SQLite, `PostgresWriter` on PostgreSQL) waiting
/// for the shared transaction to end: its operation's outcome is kept here between running it
/// and the commit or rollback, then handed over.
final class CommitTicket<Value: Sendable>: Sendable {
    typealias Outcome = Result<Value, StoreError>

    /// Resumed with the outcome.
    private let continuation: CheckedContinuation<Outcome, Never>
    /// Told of a successful outcome once committed, before the caller resumes.
    private let onCommit: (@Sendable (Value) -> Void)?
    private let outcome = Mutex<Outcome?>(nil)

    init(continuation: CheckedContinuation<Outcome, Never>, onCommit: (@Sendable (Value) -> Void)?) {
        self.continuation = continuation
        self.onCommit = onCommit
    }

    /// Runs the operation and keeps its outcome; a `StoreError` is its refusal (it changed
    /// nothing), anything else is rethrown to abort the transaction.
    func run(_ operation: () throws -> Value) throws {
        let result: Outcome
        do { result = .success(try operation()) } catch let refused as StoreError { result = .failure(refused) }
        outcome.withLock { $0 = result }
    }

    /// `run` for an operation that suspends.
    func run(_ operation: () async throws -> Value) async throws {
        let result: Outcome
        do { result = .success(try await operation()) } catch let refused as StoreError { result = .failure(refused) }
        outcome.withLock { $0 = result }
    }

    /// Keeps an outcome found for it (its operation ran as part of a larger one).
    func keep(_ result: Outcome) {
        outcome.withLock { $0 = result }
    }

    /// The transaction committed: hands over the kept outcome.
    func committed() {
        let result = outcome.withLock { $0 } ?? .failure(.database("the write was not performed"))
        if let onCommit, case .success(let value) = result { onCommit(value) }
        continuation.resume(returning: result)
    }

    /// The transaction was rolled back (or never began): the caller fails with `error`.
    func fail(_ error: StoreError) {
        continuation.resume(returning: .failure(error))
    }
}
