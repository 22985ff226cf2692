import Foundation
import GRDB
import ServiceLifecycle
import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// The SQLite engine: collections of JSON records in one file (WAL), safe to share across tasks.
///
/// Writes suspend their callers while they wait for the writer, so concurrent writes share one
/// transaction (group commit, see `WriteBatcher`), several times cheaper per write than a
/// transaction each. Reads run in parallel with writes and with each other.
public final class SQLiteStore: RecordStore {
    /// The name of the database file inside the data directory.
    public static let databaseFileName = "moonbase.sqlite"

    /// How hard a commit holds on to the disk (SQLite's `synchronous` in WAL mode).
    public enum Synchronous: String, Sendable, CaseIterable {
        /// The WAL is synced at checkpoints only: a committed write survives the process
        /// crashing, never corrupts the file, and may be lost with the last moments of writes
        /// if the machine loses power.
        case normal
        /// The WAL is synced at every commit (once per group of writes): a write acknowledged
        /// survives power loss too.
        case full
    }

    let writer: any DatabaseWriter
    let batcher: WriteBatcher
    /// Where events and deliveries are stored and read.
    let outboxTables = OutboxTables()
    /// This process, the data folder's one node (see `NodeRegistry`).
    let nodes = LocalNodeRegistry()
    /// Keeps the WAL short off the writer; nil in memory.
    private let checkpointer: WALCheckpointer?

    /// The WAL checkpointer, for the server to run (see `RecordStore.upkeep`).
    public var upkeep: [any Service] { checkpointer.map { [$0] } ?? [] }
    /// Names of existing collections, so the hot paths can refuse an unknown collection without
    /// touching SQLite. Updated inside the same write that creates or deletes a collection.
    private let knownCollections: Mutex<Set<String>>

    /// Opens (creating if needed) `<directory>/moonbase.sqlite`, creating the directory too, and
    /// brings its schema up to date. `events` hears of every event a write stores (see
    /// `CommittedEventSink`); `commits` of the number of writes each transaction carried (group
    /// commit), on the writer. `synchronous` says what a commit survives.
    public convenience init(directory: String, events: (any CommittedEventSink)? = nil, commits: (@Sendable (Int) -> Void)? = nil,
                            synchronous: Synchronous = .normal) throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.databaseFileName).path
        let pool: DatabasePool
        let checkpointer: WALCheckpointer
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // A pool gives WAL mode: readers never wait for the writer. Checkpoints run on a
            // connection of their own, the writer's only if the WAL grows four times longer.
            pool = try DatabasePool(path: path, configuration: Self.configuration(autocheckpoint: 4 * Self.walRestartFrames))
            // GRDB sets NORMAL on the writer when it turns WAL on, after `prepareDatabase`.
            if synchronous == .full { try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") } }
            checkpointer = try WALCheckpointer(path: path, interval: .milliseconds(100), restartFrames: Self.walRestartFrames)
        } catch {
            throw StoreError.database("cannot open \(path): \(StoreError(wrapping: error).messageOnly)")
        }
        try self.init(writer: pool, checkpointer: checkpointer, events: events, commits: commits)
    }

    /// The WAL starts over every ~40 MB rather than SQLite's ~4 MB: each restart holds writes
    /// back for a moment (see `WALCheckpointer`).
    static let walRestartFrames = 10_000

    /// A private database in memory, gone when the store is; for tests.
    public static func inMemory(events: (any CommittedEventSink)? = nil) throws -> SQLiteStore {
        try SQLiteStore(writer: DatabaseQueue(configuration: configuration(autocheckpoint: walRestartFrames)), checkpointer: nil, events: events)
    }

    private init(writer: any DatabaseWriter, checkpointer: WALCheckpointer?, events: (any CommittedEventSink)?,
                 commits: (@Sendable (Int) -> Void)? = nil) throws {
        self.writer = writer
        self.checkpointer = checkpointer
        self.batcher = WriteBatcher(writer: writer, events: events, commits: commits)
        do {
            try Schema.migrator.migrate(writer)
            let names = try writer.read { db in try String.fetchSet(db, sql: SQL.collectionNames) }
            self.knownCollections = Mutex(names)
        } catch {
            throw StoreError.database("cannot prepare the database: \(StoreError(wrapping: error).messageOnly)")
        }
    }

    private static func configuration(autocheckpoint: Int) -> Configuration {
        var configuration = Configuration()
        configuration.label = "moonbase"
        // Wait for a lock held by another process (a backup, the sqlite3 shell) instead of failing.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // In WAL mode NORMAL never corrupts the database (a power cut can lose the last
            // commits); it skips the fsync per commit, which `--sync full` pays once per group
            // commit (set on the writer once it is open).
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autocheckpoint)")
        }
        return configuration
    }

    // MARK: - Collections

    public func createCollection(name: String) async throws(StoreError) -> CollectionInfo {
        guard CollectionInfo.isValidName(name) else { throw .invalidCollectionName(name) }
        let info = CollectionInfo(name: name, created: Timestamp.now())
        try collectionWrite { db in
            do {
                try db.cachedStatement(sql: SQL.insertCollection).execute(arguments: [info.name, info.created])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError.collectionExists(name)
            }
            knownCollections.withLock { _ = $0.insert(name) }
        }
        return info
    }

    public func collections() async throws(StoreError) -> [CollectionInfo] {
        try mappingErrors {
            try writer.read { db in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: SQL.allCollections))
                var result: [CollectionInfo] = []
                while let row = try cursor.next() {
                    result.append(CollectionInfo(name: try row.decode(atIndex: 0), created: try row.decode(atIndex: 1)))
                }
                return result
            }
        }
    }

    /// Whether a collection exists, answered from memory (it follows the changes made through
    /// this store; one deleted through another connection is noticed at the next insert).
    public func collectionExists(_ name: String) -> Bool {
        knownCollections.withLock { $0.contains(name) }
    }

    public func deleteCollection(name: String) async throws(StoreError) {
        try collectionWrite { db in
            // Existence first, so deleting an unknown name does not walk the records index.
            guard try Int64.fetchOne(db.cachedStatement(sql: SQL.collectionExists), arguments: [name]) != nil else {
                throw StoreError.collectionNotFound(name)
            }
            try db.cachedStatement(sql: SQL.deleteCollectionRecords).execute(arguments: [name])
            try db.cachedStatement(sql: SQL.deleteCollection).execute(arguments: [name])
            knownCollections.withLock { _ = $0.remove(name) }
        }
    }

    /// Runs a collection change in its own transaction. If the transaction fails after the
    /// in-memory set was touched, the set is reloaded so it cannot disagree with the file.
    private func collectionWrite(_ change: (Database) throws -> Void) throws(StoreError) {
        do {
            try writer.write { db in try change(db) }
        } catch let refused as StoreError {
            throw refused
        } catch {
            if let names = try? writer.read({ db in try String.fetchSet(db, sql: SQL.collectionNames) }) {
                knownCollections.withLock { $0 = names }
            }
            throw StoreError(wrapping: error)
        }
    }

    // MARK: - Records

    public func write(_ write: RecordWrite, outbox: OutboxRequest?) async throws(StoreError) -> WriteResult {
        switch write {
        case .insert(let record):
            try await batcher.performWrite(try insertOperation(record, outbox: outbox))
        case .replace(let collection, let id, let fields, let version):
            try await batcher.performWrite(try replaceOperation(collection: collection, id: id, fields: fields, ifVersion: version, outbox: outbox))
        case .delete(let collection, let id, let version):
            try await batcher.performWrite(try deleteOperation(collection: collection, id: id, ifVersion: version, outbox: outbox))
        }
    }

    func insertOperation(_ record: MoonbaseModel.Record, outbox: OutboxRequest?) throws(StoreError) -> WriteBatcher.Operation<WriteResult> {
        guard collectionExists(record.collection) else { throw .collectionNotFound(record.collection) }
        let stored = record.version == 1 ? record : MoonbaseModel.Record(id: record.id, collection: record.collection, created: record.created,
                                                          updated: record.updated, version: 1, fields: record.fields)
        // Serialized before queueing, so the shared write transaction holds the lock for less time.
        let fieldsJSON = stored.fields.serialized()
        let data = String(decoding: fieldsJSON, as: UTF8.self)
        let event = try outboxTables.prepare(outbox, type: .created, collection: stored.collection, recordID: stored.id,
                                             timestamp: stored.updated)
        // The event's data (for its handlers; the stored event refers to the record) is known
        // before the write: built here, outside the writer's turn.
        let eventData = event.map { _ in stored.json }
        return { db in
            // The record goes first, naming the event it gets next, so that the event can name
            // the record's row, and a refused insert leaves nothing to take back.
            let sequence = try event.map { _ in try self.outboxTables.nextSequence(db) }
            do {
                try db.cachedStatement(sql: SQL.insertRecord).run { bind in
                    bind.text(stored.collection)
                    bind.text(stored.id)
                    bind.text(stored.created)
                    bind.text(stored.updated)
                    bind.int(stored.version)
                    bind.text(data)
                    bind.int(sequence)
                }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                // The collection was deleted after the check above, or the id is taken.
                if error.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY {
                    // Deleted by another connection to the file: forget it here too.
                    self.knownCollections.withLock { _ = $0.remove(stored.collection) }
                    throw StoreError.collectionNotFound(stored.collection)
                }
                throw StoreError.recordExists(collection: stored.collection, id: stored.id)
            }
            guard let event, let sequence, let eventData else { return WriteResult(record: stored) }
            _ = try self.outboxTables.store(event, sequence: sequence, record: db.lastInsertedRowID, oldData: nil, db)
            return event.result(sequence: sequence, record: stored, data: eventData, oldData: nil)
        }
    }

    public func record(collection: String, id: String) async throws(StoreError) -> MoonbaseModel.Record {
        guard collectionExists(collection) else { throw .collectionNotFound(collection) }
        let found = try mappingErrors {
            // One statement is atomic by itself; skipping the explicit read transaction saves
            // a BEGIN/COMMIT pair per lookup.
            try writer.unsafeRead { db -> MoonbaseModel.Record? in
                let cursor = try Row.fetchCursor(db.cachedStatement(sql: SQL.selectRecord), arguments: [collection, id])
                return try cursor.next().map { try Self.decodeRecord($0, collection: collection) }
            }
        }
        guard let found else { throw .recordNotFound(collection: collection, id: id) }
        return found
    }

    public func list(collection: String, page: Int, perPage: Int, sort: RecordSort,
                     filters: [RecordFilter]) async throws(StoreError) -> RecordPage {
        guard collectionExists(collection) else { throw .collectionNotFound(collection) }
        let window = RecordWindow(page: page, perPage: perPage)
        return try mappingErrors {
            // One read transaction, so the total and the items agree.
            try writer.read { db in
                var arguments: StatementArguments = [collection]
                for filter in filters { arguments += filter.arguments }
                let total = try Int.fetchOne(db.cachedStatement(sql: filters.isEmpty ? SQL.countRecords : SQL.countFiltered(filters)),
                                             arguments: arguments) ?? 0
                var items: [MoonbaseModel.Record] = []
                if let offset = window.offset, offset < total {
                    items.reserveCapacity(min(window.perPage, total - offset))
                    let cursor = try Row.fetchCursor(db.cachedStatement(sql: SQL.listRecords(sort, filters: filters)),
                                                     arguments: arguments + [window.perPage, offset])
                    while let row = try cursor.next() {
                        items.append(try Self.decodeRecord(row, collection: collection))
                    }
                }
                return window.page(items, total: total)
            }
        }
    }

    func replaceOperation(collection: String, id: String, fields: JSONObject, ifVersion: Int64, outbox: OutboxRequest?)
        throws(StoreError) -> WriteBatcher.Operation<WriteResult>
    {
        guard collectionExists(collection) else { throw .collectionNotFound(collection) }
        let fields = MoonbaseModel.Record.droppingSystemFields(fields)
        let data = String(decoding: fields.serialized(), as: UTF8.self)
        let updated = Timestamp.now()
        let event = try outboxTables.prepare(outbox, type: .updated, collection: collection, recordID: id, timestamp: updated)
        guard let event else {
            return { db in
                let statement = try db.cachedStatement(sql: SQL.replaceRecord)
                let cursor = try Row.fetchCursor(statement, arguments: [data, updated, nil, collection, id, ifVersion])
                guard let row = try cursor.next() else {
                    throw try Self.whyNotFound(db, collection: collection, id: id)
                }
                return WriteResult(record: MoonbaseModel.Record(id: id, collection: collection, created: try row.decode(atIndex: 0),
                                                  updated: updated, version: try row.decode(atIndex: 1), fields: fields))
            }
        }
        return { db in
            // With an event, the record as it was (its `old_data`) is read and its version checked
            // first, then the event is stored, and only then the record: every refusal happens
            // before anything is written.
            let (old, row) = try Self.currentRecord(db, collection: collection, id: id, ifVersion: ifVersion)
            let stored = MoonbaseModel.Record(id: id, collection: collection, created: old.created, updated: updated,
                                version: old.version + 1, fields: fields)
            let oldData = old.json
            let sequence = try self.outboxTables.store(event, sequence: nil, record: row,
                                                       oldData: String(decoding: oldData.serialized(), as: UTF8.self), db)
            try db.cachedStatement(sql: SQL.replaceRecord).execute(arguments: [data, updated, sequence, collection, id, ifVersion])
            guard db.changesCount == 1 else { throw UnexpectedlyMissing(collection: collection, id: id) }
            return event.result(sequence: sequence, record: stored, data: stored.json, oldData: oldData)
        }
    }

    func deleteOperation(collection: String, id: String, ifVersion: Int64, outbox: OutboxRequest?)
        throws(StoreError) -> WriteBatcher.Operation<WriteResult>
    {
        guard collectionExists(collection) else { throw .collectionNotFound(collection) }
        let event = try outboxTables.prepare(outbox, type: .deleted, collection: collection, recordID: id, timestamp: Timestamp.now())
        guard let event else {
            return { db in
                let statement = try db.cachedStatement(sql: SQL.deleteRecord)
                let cursor = try Row.fetchCursor(statement, arguments: [collection, id, ifVersion])
                guard let row = try cursor.next() else {
                    throw try Self.whyNotFound(db, collection: collection, id: id)
                }
                return WriteResult(record: try Self.decodeRecord(row, collection: collection))
            }
        }
        return { db in
            // As for replace: read and check, store the event, then delete.
            let deleted = try Self.currentRecord(db, collection: collection, id: id, ifVersion: ifVersion).record
            // `data` and `old_data` are both the record as it was (stored once, as `old_data`).
            let data = deleted.json
            let sequence = try self.outboxTables.store(event, sequence: nil, record: nil,
                                                       oldData: String(decoding: data.serialized(), as: UTF8.self), db)
            try db.cachedStatement(sql: SQL.deleteRecordUnconditionally).execute(arguments: [collection, id])
            guard db.changesCount == 1 else { throw UnexpectedlyMissing(collection: collection, id: id) }
            return event.result(sequence: sequence, record: deleted, data: data, oldData: data)
        }
    }

    /// (transactions, record writes) committed so far by this store; writes > transactions
    /// means group commit is working.
    public var writeStatistics: (transactions: Int, writes: Int) {
        let (batches, operations) = batcher.statistics
        return (batches, operations)
    }

    /// The `synchronous` setting the writer's connection commits with.
    public func synchronousInEffect() throws(StoreError) -> Synchronous? {
        try mappingErrors {
            try writer.write { db in
                switch try Int.fetchOne(db, sql: "PRAGMA synchronous") {
                case 1: Synchronous.normal
                case 2: Synchronous.full
                default: nil
                }
            }
        }
    }

    // MARK: - Helpers

    /// After a guarded write matched no row: tells a stale version from a missing record or
    /// collection.
    private static func whyNotFound(_ db: Database, collection: String, id: String) throws -> StoreError {
        if try Int64.fetchOne(db.cachedStatement(sql: SQL.recordVersion), arguments: [collection, id]) != nil {
            return .versionConflict(collection: collection, id: id)
        }
        if try Int64.fetchOne(db.cachedStatement(sql: SQL.collectionExists), arguments: [collection]) != nil {
            return .recordNotFound(collection: collection, id: id)
        }
        return .collectionNotFound(collection)
    }

    /// The stored record and its rowid, if its version is `ifVersion`; else the refusal that
    /// explains why not.
    private static func currentRecord(_ db: Database, collection: String, id: String,
                                      ifVersion: Int64) throws -> (record: MoonbaseModel.Record, row: Int64) {
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: SQL.selectRecordForWrite), arguments: [collection, id])
        guard let row = try cursor.next() else {
            throw try whyNotFound(db, collection: collection, id: id)
        }
        let record = try decodeRecord(row, collection: collection)
        guard record.version == ifVersion else { throw StoreError.versionConflict(collection: collection, id: id) }
        return (record, try row.decode(atIndex: 5))
    }

    /// Reads a row shaped `id, created, updated, version, data`.
    ///
    /// Fails with `CorruptRecord` rather than a `StoreError`: inside a write batch a `StoreError`
    /// means "refused, nothing changed", while this one must roll the transaction back.
    private static func decodeRecord(_ row: Row, collection: String) throws -> MoonbaseModel.Record {
        let id: String = try row.decode(atIndex: 0)
        // The JSON is parsed straight from SQLite's buffer, without an intermediate String.
        let fields = try row.withUnsafeData(atIndex: 4) { data -> JSONObject in
            guard let data else { return JSONObject() }
            let value: JSONValue
            do {
                value = try data.withUnsafeBytes { bytes in try JSONValue.parse(bytes) }
            } catch {
                throw CorruptRecord(collection: collection, id: id, problem: "\(error)")
            }
            guard case .object(let object) = value else {
                throw CorruptRecord(collection: collection, id: id, problem: "not a JSON object")
            }
            return object
        }
        return MoonbaseModel.Record(id: id, collection: collection, created: try row.decode(atIndex: 1),
                      updated: try row.decode(atIndex: 2), version: try row.decode(atIndex: 3), fields: fields)
    }
}

extension StoreError {
    /// The message without the "database error: " prefix, for wrapping in a longer message.
    var messageOnly: String {
        if case .database(let message) = self { return message }
        return description
    }
}

/// A record read and checked earlier in the same write transaction is no longer there: cannot
/// happen while this store is the only writer. Not a `StoreError`, so it rolls the batch back
/// (the event stored for the write with it).
struct UnexpectedlyMissing: Error, CustomStringConvertible {
    let collection: String
    let id: String

    var description: String { "record '\(id)' in '\(collection)' vanished during its own write" }
}

/// The stored data of a record cannot be read back (the file was edited by hand or damaged).
struct CorruptRecord: Error, CustomStringConvertible {
    let collection: String
    let id: String
    let problem: String

    var description: String { "stored data of record '\(id)' in '\(collection)' is unreadable: \(problem)" }
}
