import GRDB
import GRDBSQLite

/// Binds values straight to a prepared statement, for the statements every record write runs.
///
/// GRDB's `execute(arguments:)` builds `StatementArguments` and a `DatabaseValue` per value on
/// each call; on the create path that cost more than SQLite's own insert (profiled: binding an
/// event row took about twice as long as inserting it). This runs the statement with SQLite's C
/// API instead. It skips GRDB's per-statement bookkeeping, which only matters for transaction
/// observers and schema changes: use it for plain INSERT and UPDATE statements that run inside a
/// transaction GRDB opened (the `WriteBatcher`'s), on a store without observers.
struct DirectBinding: ~Copyable {
    private let statement: SQLiteStatement
    private var index: Int32 = 1

    fileprivate init(_ statement: SQLiteStatement) {
        self.statement = statement
    }

    mutating func text(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            if let start = bytes.baseAddress, !bytes.isEmpty {
                start.withMemoryRebound(to: CChar.self, capacity: bytes.count) { text in
                    _ = sqlite3_bind_text(statement, index, text, Int32(bytes.count), Self.transient)
                }
            } else { // a NULL pointer would bind SQL NULL
                _ = sqlite3_bind_text(statement, index, "", 0, Self.transient)
            }
        }
        index += 1
    }

    mutating func text(_ value: String?) {
        if let value { text(value) } else { null() }
    }

    mutating func blob(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            if let start = buffer.baseAddress, !buffer.isEmpty {
                _ = sqlite3_bind_blob(statement, index, start, Int32(buffer.count), Self.transient)
            } else { // a NULL pointer would bind SQL NULL
                _ = sqlite3_bind_zeroblob(statement, index, 0)
            }
        }
        index += 1
    }

    mutating func int(_ value: Int64) {
        _ = sqlite3_bind_int64(statement, index, value)
        index += 1
    }

    mutating func int(_ value: Int64?) {
        if let value { int(value) } else { null() }
    }

    mutating func null() {
        _ = sqlite3_bind_null(statement, index)
        index += 1
    }

    /// Tells SQLite to copy the bytes: they live only while `withUTF8` runs.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// Reads the columns of the row a statement stepped to, straight from SQLite (see
/// `Statement.readFirstRow`). Column numbers start at 0.
struct DirectRow: ~Copyable {
    fileprivate let statement: SQLiteStatement

    func int(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement, column)
    }

    /// nil for NULL.
    func optionalInt(_ column: Int32) -> Int64? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, column)
    }

    /// The bytes of a blob (or text); empty for NULL.
    func bytes(_ column: Int32) -> [UInt8] {
        let start = sqlite3_column_blob(statement, column)
        let count = Int(sqlite3_column_bytes(statement, column)) // after the pointer, as SQLite asks
        guard let start, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }
}

extension Statement {
    /// Binds every parameter with `bind`, in order, and runs the statement to its end.
    /// - Throws: `DatabaseError` with SQLite's (extended) result code and message.
    func run(_ bind: (inout DirectBinding) -> Void) throws {
        try start(bind)
        while try step() {}
    }

    /// Binds every parameter with `bind`, in order, and reads the first row the statement yields
    /// with `read`; nil if it yields none. For the few reads inside every write, where a GRDB
    /// `Row` costs more than the read itself.
    /// - Throws: `DatabaseError` with SQLite's (extended) result code and message.
    func readFirstRow<T>(_ bind: (inout DirectBinding) -> Void, _ read: (borrowing DirectRow) -> T) throws -> T? {
        try start(bind)
        guard try step() else { return nil }
        let value = read(DirectRow(statement: sqliteStatement))
        _ = sqlite3_reset(sqliteStatement) // done with it: lets go of what it read
        return value
    }

    private func start(_ bind: (inout DirectBinding) -> Void) throws {
        // A failed step is reported by its own `sqlite3_step`; `reset` repeats that code, so it
        // is ignored here.
        _ = sqlite3_reset(sqliteStatement)
        var binding = DirectBinding(sqliteStatement)
        bind(&binding)
    }

    /// Steps once: true at a row, false at the end.
    private func step() throws -> Bool {
        switch sqlite3_step(sqliteStatement) {
        case SQLITE_DONE: return false
        case SQLITE_ROW: return true
        case let code:
            let message = sqlite3_errmsg(sqlite3_db_handle(sqliteStatement)).map { String(cString: $0) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }
}
