import GRDB

/// Everything the store can refuse or fail with. The server maps each case to an HTTP status
/// (400 for a bad name, 404 for unknown collection, record or delivery, 409 for an existing
/// collection, a version conflict or a delivery that cannot or should not be retried, 500 for the database,
/// 503 while the database cannot be reached), and uses `description` as the error message.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not match `^[a-z][a-z0-9_]{0,62}$`.
    case invalidCollectionName(String)
    /// A collection with that name already exists.
    case collectionExists(String)
    /// No collection with that name.
    case collectionNotFound(String)
    /// The collection exists, but has no record with that id.
    case recordNotFound(collection: String, id: String)
    /// The record changed (or was replaced) since the version the caller read.
    case versionConflict(collection: String, id: String)
    /// The database failed; the message says how.
    case database(String)
    /// The database cannot be reached or written (PostgreSQL down or out of reach; SQLite's disk
    /// full or its folder read-only): nothing was written, and the same call may succeed once it
    /// is back. The message says what failed.
    case unavailable(String)
    /// No hook delivery with that id.
    case deliveryNotFound(Int64)
    /// Only failed or dead deliveries can be sent again; this one has another status.
    case deliveryNotRetryable(id: Int64, status: DeliveryStatus)
    /// Sending this delivery again would apply stale data: `newer`, a later delivery of its record
    /// to the same handler, has succeeded.
    case staleRedelivery(id: Int64, newer: Int64)

    public var description: String {
        switch self {
        case .invalidCollectionName(let name):
            let shown = name.isEmpty ? "an empty name" : "'\(name)'"
            return "invalid collection name \(shown): names must start with a lowercase letter, "
                + "contain only a-z, 0-9 and _, and be at most 63 characters"
        case .collectionExists(let name):
            return "collection '\(name)' already exists"
        case .collectionNotFound(let name):
            return "collection '\(name)' not found"
        case .recordNotFound(let collection, let id):
            return "record '\(id)' not found in collection '\(collection)'"
        case .versionConflict(let collection, let id):
            return "record '\(id)' in collection '\(collection)' was changed by another write; read it again and retry"
        case .database(let message):
            return "database error: \(message)"
        case .unavailable(let message):
            return "storage unavailable: \(message)"
        case .deliveryNotFound(let id):
            return "delivery \(id) not found"
        case .deliveryNotRetryable(let id, let status):
            return "delivery \(id) is \(status.rawValue); only failed or dead deliveries can be retried"
        case .staleRedelivery(let id, let newer):
            return "delivery \(newer), a later event of the same record to the same handler, has succeeded: "
                + "retrying delivery \(id) would apply older data over it; retry with force to send it anyway"
        }
    }
}

extension StoreError {
    /// An insert whose id `collection` already has (a `database` error, as both engines say it).
    static func recordExists(collection: String, id: String) -> StoreError {
        .database("record '\(id)' already exists in collection '\(collection)'")
    }
}

extension StoreError {
    /// SQLite's answers for a disk that is full or failing, or a data folder made read-only: the
    /// write did not happen (SQLite rolls it back), and it may succeed once there is room again.
    static let storageTrouble: [ResultCode] = [.SQLITE_FULL, .SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_CANTOPEN]

    /// Wraps any error that is not already a `StoreError`. GRDB's `DatabaseError` carries SQLite's
    /// own message, which is the useful part; its full description also repeats the SQL.
    init(wrapping error: any Error) {
        switch error {
        case let storeError as StoreError:
            self = storeError
        case let dbError as DatabaseError where Self.storageTrouble.contains(dbError.resultCode):
            self = .unavailable(dbError.message ?? "\(dbError.resultCode)")
        case let dbError as DatabaseError:
            self = .database(dbError.message ?? "\(dbError.resultCode)")
        default:
            self = .database(String(describing: error))
        }
    }
}

/// Runs GRDB code and converts whatever it throws into a `StoreError`, so the public API can use
/// typed throws.
@inline(__always)
func mappingErrors<T>(_ body: () throws -> T) throws(StoreError) -> T {
    do {
        return try body()
    } catch {
        throw StoreError(wrapping: error)
    }
}
