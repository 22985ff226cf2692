import Logging
import MoonbaseJSON
import MoonbaseModel
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The PostgreSQL engine: collections of JSON records (`json`, key order kept) in a PostgreSQL database, through
/// postgres-nio. It answers exactly as `SQLiteStore` does behind `RecordStore`.
///
/// Writes go through `PostgresWriter` (group commit on a connection of its own, events handed
/// to the sink in commit order); reads use a pool of connections (`PostgresClient`) and fail
/// with `unavailable` when no connection comes within `acquireTimeout`, rather than wait for the
/// pool to give up. Migrations run at `open`, under an advisory lock (see `PostgresSchema`).
public final class PostgresStore: RecordStore {
    /// This node's name, which its delivery claims carry (see `DeliveryClaims`).
    public let node: String
    /// How long a claim lasts unrenewed.
    public let lease: Duration
    let writer: PostgresWriter
    let client: PostgresClient
    let logger: Logger
    /// How long a read waits for a connection before it fails with `unavailable`.
    let acquireTimeout: Duration
    /// Runs the pool (`PostgresClient.run`) until the store goes.
    private let clientRun: Task<Void, Never>
    /// Names of existing collections, so hot paths refuse an unknown one without a query. Follows
    /// the changes made through this store; one deleted elsewhere is noticed at the next insert.
    private let knownCollections: Mutex<Set<String>>

    /// Connects to `location`, brings its layout up to date and returns the store. `events` hears
    /// of every event a write stores (see `CommittedEventSink`); `commits` of the number of
    /// writes each transaction carried (group commit), as on SQLite. `node` names this node
    /// among those sharing the database, `lease` how long its delivery claims last unrenewed.
    /// - Throws: `unavailable` when the server cannot be reached within `connectTimeout`,
    ///   `database` when it refuses (a wrong password, no such database) or a migration fails;
    ///   the message names the server (never the password).
    public static func open(_ location: PostgresLocation, events: (any CommittedEventSink)? = nil,
                            commits: (@Sendable (Int) -> Void)? = nil, logger: Logger,
                            node: String = "local", lease: Duration = .seconds(30), maxConnections: Int = 16, connectTimeout: Duration = .seconds(10),
                            acquireTimeout: Duration = .seconds(5)) async throws(StoreError) -> PostgresStore {
        let tls: PostgresConnection.Configuration.TLS
        do { tls = try location.connectionTLS() } catch { throw .database("cannot open PostgreSQL at \(location): \(error.reason)") }
        var connection = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.username,
                                                          password: location.password, database: location.database, tls: tls)
        connection.options.connectTimeout = timeAmount(connectTimeout)
        let names: Set<String>
        do {
            let migrator = try await PostgresConnection.connect(on: PostgresClient.defaultEventLoopGroup.any(), configuration: connection,
                                                                id: 0, logger: logger).get()
            do {
                try await PostgresSchema.migrate(migrator, logger: logger)
                // Its writes claim deliveries from now on: they need a lease behind them.
                try await migrator.query(PostgresClaims.renewal(node: node, leaseMilliseconds: lease.milliseconds), logger: logger)
                var found: Set<String> = []
                for try await name in try await migrator.query("SELECT name FROM collections", logger: logger).decode(String.self) {
                    found.insert(name)
                }
                names = found
            } catch {
                try? await migrator.close()
                throw error
            }
            try? await migrator.close()
        } catch {
            let reason = StoreError(postgres: error)
            switch reason {
            case .unavailable(let message): throw .unavailable("cannot reach PostgreSQL at \(location): \(message)")
            default: throw .database("cannot open PostgreSQL at \(location): \(reason.messageOnly)")
            }
        }
        var pool = PostgresClient.Configuration(host: location.host, port: location.port, username: location.username,
                                                password: location.password, database: location.database, tls: location.clientTLS)
        pool.options.maximumConnections = maxConnections
        pool.options.connectTimeout = connectTimeout
        // The writer reconnects within the time a read waits for a connection, so writes and reads
        // alike answer `unavailable` within `acquireTimeout` while the server is out of reach.
        var writerConnection = connection
        writerConnection.options.connectTimeout = Self.timeAmount(min(connectTimeout, acquireTimeout))
        return PostgresStore(client: PostgresClient(configuration: pool, backgroundLogger: logger),
                             writer: PostgresWriter(configuration: writerConnection, node: node, events: events, commits: commits, logger: logger),
                             collections: names, logger: logger, acquireTimeout: acquireTimeout, node: node, lease: lease)
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    private init(client: PostgresClient, writer: PostgresWriter, collections: Set<String>, logger: Logger, acquireTimeout: Duration,
                 node: String, lease: Duration) {
        self.node = node
        self.lease = lease
        self.client = client
        self.writer = writer
        self.logger = logger
        self.acquireTimeout = acquireTimeout
        self.knownCollections = Mutex(collections)
        clientRun = Task { await client.run() }
    }

    deinit {
        clientRun.cancel()
        let writer = writer
        Task { await writer.close() }
    }

    /// None: the connection pool runs from the moment the store opens (migrations need it), and
    /// PostgreSQL keeps its own files.
    public var upkeep: [any Service] { [] }

    /// Closes every connection; the store must not be used afterwards.
    public func close() async {
        await writer.close()
        clientRun.cancel()
    }

    /// (transactions, record writes) committed so far by this store.
    public var writeStatistics: (transactions: Int, writes: Int) {
        let (batches, operations) = writer.statistics
        return (batches, operations)
    }

    /// Runs a read on the pool, failing with `unavailable` if no connection comes in time.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async throws(StoreError) -> T {
        let (client, logger) = (client, logger)
        return try await withDeadline(acquireTimeout) { try await body(client, logger) }
    }

    // MARK: - Collections

    public func createCollection(name: String) async throws(StoreError) -> CollectionInfo {
        guard CollectionInfo.isValidName(name) else { throw .invalidCollectionName(name) }
        let info = CollectionInfo(name: name, created: Timestamp.now())
        let logger = logger
        return try await writer.perform({ connection in
            let rows = try await connection.query("""
                INSERT INTO collections (name, created) VALUES (\(info.name), \(info.created)) ON CONFLICT DO NOTHING RETURNING 1
                """, logger: logger)
            guard try await rows.collect().count == 1 else { throw StoreError.collectionExists(name) }
            return info
        }, onCommit: { _ in self.knownCollections.withLock { _ = $0.insert(name) } })
    }

    public func collections() async throws(StoreError) -> [CollectionInfo] {
        try await read { client, logger in
            var result: [CollectionInfo] = []
            let rows = try await client.query(#"SELECT name, created FROM collections ORDER BY name COLLATE "C""#, logger: logger)
            for try await (name, created) in rows.decode((String, String).self) {
                result.append(CollectionInfo(name: name, created: created))
            }
            return result
        }
    }

    /// From memory for a collection this node has seen; else from the database, since another
    /// node may have made it (then remembered).
    public func collectionExists(_ name: String) async throws(StoreError) -> Bool {
        if knownCollections.withLock({ $0.contains(name) }) { return true }
        guard CollectionInfo.isValidName(name) else { return false }
        let found = try await read { client, logger in
            try await client.query(Self.collectionRow(name), logger: logger).collect().count == 1
        }
        if found { knownCollections.withLock { _ = $0.insert(name) } }
        return found
    }

    public func deleteCollection(name: String) async throws(StoreError) {
        let logger = logger
        try await writer.perform({ connection in
            // Its records go with it (ON DELETE CASCADE); its events stay, as on SQLite.
            let rows = try await connection.query("DELETE FROM collections WHERE name = \(name) RETURNING 1", logger: logger)
            guard try await rows.collect().count == 1 else { throw StoreError.collectionNotFound(name) }
        }, onCommit: { _ in self.knownCollections.withLock { _ = $0.remove(name) } })
    }

    // MARK: - Records

    public func record(collection: String, id: String) async throws(StoreError) -> MoonbaseModel.Record {
        guard try await collectionExists(collection) else { throw .collectionNotFound(collection) }
        let found = try await read { client, logger -> MoonbaseModel.Record? in
            let rows = try await client.query("""
                SELECT id, created, updated, version, data::text FROM records WHERE collection = \(collection) AND id = \(id)
                """, logger: logger)
            for try await row in rows.decode((String, String, String, Int64, String).self) {
                return try Self.record(row, collection: collection)
            }
            return nil
        }
        guard let found else { throw .recordNotFound(collection: collection, id: id) }
        return found
    }

    public func list(collection: String, page: Int, perPage: Int, sort: RecordSort,
                     filters: [RecordFilter]) async throws(StoreError) -> RecordPage {
        guard try await collectionExists(collection) else { throw .collectionNotFound(collection) }
        let window = RecordWindow(page: page, perPage: perPage)
        let query = PostgresRecordQuery.page(collection: collection, sort: sort, filters: filters,
                                             limit: window.offset == nil ? 0 : window.perPage, offset: window.offset ?? 0)
        let (total, items) = try await read { client, logger -> (Int, [MoonbaseModel.Record]) in
            var total = 0
            var items: [MoonbaseModel.Record] = []
            // One statement, one snapshot: the total and the items agree.
            for try await (count, id, created, updated, version, data) in try await client.query(query, logger: logger)
                .decode((Int64, String?, String?, String?, Int64?, String?).self) {
                total = Int(count)
                if let id, let created, let updated, let version, let data {
                    items.append(try Self.record((id, created, updated, version, data), collection: collection))
                }
            }
            return (total, items)
        }
        return window.page(items, total: total)
    }

    public func write(_ write: RecordWrite, outbox: OutboxRequest?) async throws(StoreError) -> WriteResult {
        let request = try Outbox.eventRequest(outbox)
        switch write {
        case .insert(let record):
            guard try await collectionExists(record.collection) else { throw .collectionNotFound(record.collection) }
            do {
                return try await writer.performInsert(PostgresInsert(record, event: request))
            } catch {
                // Deleted through another node: forget it here too.
                if case .collectionNotFound(let name) = error { knownCollections.withLock { _ = $0.remove(name) } }
                throw error
            }
        case .replace(let collection, let id, let fields, let version):
            guard try await collectionExists(collection) else { throw .collectionNotFound(collection) }
            return try await writer.performWrite(replaceOperation(collection: collection, id: id, fields: fields, ifVersion: version, request))
        case .delete(let collection, let id, let version):
            guard try await collectionExists(collection) else { throw .collectionNotFound(collection) }
            return try await writer.performWrite(deleteOperation(collection: collection, id: id, ifVersion: version, request))
        }
    }

    private func replaceOperation(collection: String, id: String, fields: JSONObject, ifVersion: Int64,
                                  _ request: OutboxRequest?) -> PostgresWriter.Operation<WriteResult> {
        let fields = MoonbaseModel.Record.droppingSystemFields(fields)
        let data = String(decoding: fields.serialized(), as: UTF8.self)
        let updated = Timestamp.now()
        let event = request.map { PendingEvent(request: $0, type: .updated, collection: collection, recordID: id, timestamp: updated) }
        let logger = logger
        return { connection in
            guard let event else {
                let rows = try await connection.query("""
                    UPDATE records SET data = \(data)::json, updated = \(updated), version = version + 1
                    WHERE collection = \(collection) AND id = \(id) AND version = \(ifVersion) RETURNING created, version
                    """, logger: logger)
                for try await (created, version) in rows.decode((String, Int64).self) {
                    return WriteResult(record: MoonbaseModel.Record(id: id, collection: collection, created: created, updated: updated,
                                                                    version: version, fields: fields))
                }
                throw try await Self.whyNotFound(collection: collection, id: id, connection, logger)
            }
            // With an event: read and check the record first, so every refusal comes before a write.
            let old = try await Self.currentRecord(collection: collection, id: id, ifVersion: ifVersion, connection, logger)
            let stored = MoonbaseModel.Record(id: id, collection: collection, created: old.created, updated: updated,
                                              version: old.version + 1, fields: fields)
            let (eventData, oldData) = (stored.json, old.json)
            let saved = try await self.storeEvent(event, data: eventData, oldData: oldData, connection)
            try await connection.query("""
                UPDATE records SET data = \(data)::json, updated = \(updated), version = version + 1
                WHERE collection = \(collection) AND id = \(id)
                """, logger: logger)
            return event.result(sequence: saved.sequence, elsewhere: saved.elsewhere, record: stored, data: eventData, oldData: oldData)
        }
    }

    private func deleteOperation(collection: String, id: String, ifVersion: Int64,
                                 _ request: OutboxRequest?) -> PostgresWriter.Operation<WriteResult> {
        let event = request.map { PendingEvent(request: $0, type: .deleted, collection: collection, recordID: id, timestamp: Timestamp.now()) }
        let logger = logger
        return { connection in
            guard let event else {
                let rows = try await connection.query("""
                    DELETE FROM records WHERE collection = \(collection) AND id = \(id) AND version = \(ifVersion)
                    RETURNING id, created, updated, version, data::text
                    """, logger: logger)
                for try await row in rows.decode((String, String, String, Int64, String).self) {
                    return WriteResult(record: try Self.record(row, collection: collection))
                }
                throw try await Self.whyNotFound(collection: collection, id: id, connection, logger)
            }
            let deleted = try await Self.currentRecord(collection: collection, id: id, ifVersion: ifVersion, connection, logger)
            // `data` and `old_data` are both the record as it was.
            let data = deleted.json
            let saved = try await self.storeEvent(event, data: data, oldData: data, connection)
            try await connection.query("DELETE FROM records WHERE collection = \(collection) AND id = \(id)", logger: logger)
            return event.result(sequence: saved.sequence, elsewhere: saved.elsewhere, record: deleted, data: data, oldData: data)
        }
    }

    // MARK: - Helpers

    /// Stores a write's event and deliveries, claimed for this node where their lanes allow.
    private func storeEvent(_ event: PendingEvent, data: JSONObject, oldData: JSONObject?,
                            _ connection: PostgresConnection) async throws -> (sequence: Int64, elsewhere: [Int]) {
        try await PostgresOutbox.store(event, data: data, oldData: oldData, node: node,
                                       connection, logger)
    }

    /// One row if the collection `name` is stored, none if not.
    private static func collectionRow(_ name: String) -> PostgresQuery {
        "SELECT 1 FROM collections WHERE name = \(name)"
    }

    private static func collectionStored(_ name: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        try await connection.query(collectionRow(name), logger: logger).collect().count == 1
    }

    /// After a guarded write matched no row: tells a stale version from a missing record or collection.
    private static func whyNotFound(collection: String, id: String, _ connection: PostgresConnection,
                                    _ logger: Logger) async throws -> StoreError {
        let rows = try await connection.query("SELECT 1 FROM records WHERE collection = \(collection) AND id = \(id)", logger: logger)
        if try await rows.collect().count == 1 { return .versionConflict(collection: collection, id: id) }
        if try await collectionStored(collection, connection, logger) { return .recordNotFound(collection: collection, id: id) }
        return .collectionNotFound(collection)
    }

    /// The stored record, locked until the transaction ends, if its version is `ifVersion`; else
    /// the refusal that explains why not.
    private static func currentRecord(collection: String, id: String, ifVersion: Int64, _ connection: PostgresConnection,
                                      _ logger: Logger) async throws -> MoonbaseModel.Record {
        let rows = try await connection.query("""
            SELECT id, created, updated, version, data::text FROM records WHERE collection = \(collection) AND id = \(id) FOR UPDATE
            """, logger: logger)
        var found: MoonbaseModel.Record?
        for try await row in rows.decode((String, String, String, Int64, String).self) {
            found = try record(row, collection: collection)
        }
        guard let found else { throw try await whyNotFound(collection: collection, id: id, connection, logger) }
        guard found.version == ifVersion else { throw StoreError.versionConflict(collection: collection, id: id) }
        return found
    }

    /// A record from a row shaped `id, created, updated, version, data`.
    static func record(_ row: (String, String, String, Int64, String), collection: String) throws -> MoonbaseModel.Record {
        guard case .object(let fields) = try JSONValue.parse(Array(row.4.utf8)) else {
            throw CorruptRecord(collection: collection, id: row.0, problem: "not a JSON object")
        }
        return MoonbaseModel.Record(id: row.0, collection: collection, created: row.1, updated: row.2, version: row.3, fields: fields)
    }
}

extension PendingEvent {
    /// The event a write on PostgreSQL stores: its row holds everything, so nothing is interned.
    init(request: OutboxRequest, type: RecordEventType, collection: String, recordID: String, timestamp: String) {
        self.init(id: request.eventID, idParts: nil, type: type, collection: collection, recordID: recordID, timestamp: timestamp,
                  storedTimestamp: nil, depth: request.depth, targets: request.deliveryTargets, created: Timestamp.currentMilliseconds(),
                  handlerSetID: nil, idPrefixID: nil)
    }
}
