import NIOCore
import PostgresNIO
import Synchronization
import _ConnectionPoolModule

extension StoreError {
    /// What a PostgreSQL failure means for a caller: `unavailable` when the server could not be
    /// reached or the connection broke (the call may succeed later), `database` for an error the
    /// server answered with (its message and SQLSTATE), the `StoreError` a `Refusal` carries.
    init(postgres error: any Error) {
        switch error {
        case let storeError as StoreError:
            self = storeError
        case let refusal as Refusal:
            self = refusal.error
        case let psqlError as PSQLError:
            if psqlError.code == .server, let info = psqlError.serverInfo {
                let state = info[.sqlState] ?? "?"
                // Class 57 (operator intervention: shutdown, admin_shutdown, cannot_connect_now)
                // and 08 (connection exceptions) mean the server is going or gone.
                if state.hasPrefix("57") || state.hasPrefix("08") {
                    self = .unavailable(info[.message] ?? "the server is shutting down")
                } else {
                    self = .database("\(info[.message] ?? "PostgreSQL error") (SQLSTATE \(state))")
                }
            } else if psqlError.code == .server || psqlError.code == .queryCancelled || psqlError.code == .messageDecodingFailure
                        || psqlError.code == .unexpectedBackendMessage || psqlError.code == .invalidCommandTag
                        || psqlError.code == .tooManyParameters {
                self = .database(String(reflecting: psqlError))
            } else {
                // Closed or failed connections.
                self = .unavailable("\(psqlError.code)" + (psqlError.underlying.map { ": \($0)" } ?? ""))
            }
        case is PostgresDecodingError:
            self = .database("a stored value cannot be read: \(error)")
        case is ChannelError, is IOError:
            self = .unavailable("\(error)")
        case let poolError as ConnectionPoolError:
            // The pool gave up making connections (after a minute of failures), is closing, or the
            // wait was cancelled: the server is out of reach, as far as a caller can tell.
            self = .unavailable(poolError == .connectionCreationCircuitBreakerTripped
                                ? "the database has been unreachable for a while" : "no connection to the database")
        default:
            self = .database(String(describing: error))
        }
    }
}

/// A refusal found by PostgreSQL itself (a constraint) rather than by a check before the
/// statement. Not a `StoreError` on purpose: the failed statement has aborted the transaction,
/// so the group it ran in must roll back and run again, each write alone (see `PostgresWriter`).
struct Refusal: Error {
    let error: StoreError
}

/// The SQLSTATE of a server error, if `error` is one.
func sqlState(of error: any Error) -> String? {
    guard let psqlError = error as? PSQLError, psqlError.code == .server else { return nil }
    return psqlError.serverInfo?[.sqlState]
}

/// Runs `body`, failing with `unavailable` if it has not finished after `limit`. Used where the
/// connection pool would otherwise wait for a connection (while the server is away) for a
/// minute. `body` is cancelled then, and left to end by itself: only reads run this way, which
/// are safe to abandon.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
    let race = DeadlineRace<T>()
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, StoreError>, Never>) in
        race.start(continuation)
        let work = Task {
            let outcome: Result<T, StoreError>
            do { outcome = .success(try await body()) } catch { outcome = .failure(StoreError(postgres: error)) }
            race.finish(outcome)
        }
        race.arm(Task {
            do { try await Task.sleep(for: limit) } catch { return }
            if race.finish(.failure(.unavailable("no connection to the database within \(limit)"))) { work.cancel() }
        })
    }
    return try result.get()
}

/// Who resumes `withDeadline`'s caller first: the work or the timer.
private final class DeadlineRace<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Result<T, StoreError>, Never>?, timer: Task<Void, Never>?)>((nil, nil))

    func start(_ continuation: CheckedContinuation<Result<T, StoreError>, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Keeps the timer, to stop it once the work has finished (or stops it now if it has).
    func arm(_ timer: Task<Void, Never>) {
        let finished = state.withLock { state -> Bool in
            state.timer = timer
            return state.continuation == nil
        }
        if finished { timer.cancel() }
    }

    /// Resumes the caller with `outcome` unless it was resumed already; says whether it was this call.
    @discardableResult
    func finish(_ outcome: Result<T, StoreError>) -> Bool {
        let (continuation, timer) = state.withLock { state in
            defer { state.continuation = nil }
            return (state.continuation, state.timer)
        }
        guard let continuation else { return false }
        timer?.cancel()
        continuation.resume(returning: outcome)
        return true
    }
}
