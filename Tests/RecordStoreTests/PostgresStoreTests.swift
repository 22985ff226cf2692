import Foundation
import Logging
import MoonbaseJSON
import MoonbaseModel
import MoonbaseTestSupport
import PostgresNIO
import _ConnectionPoolModule
import Testing
@testable import RecordStore

/// What only the PostgreSQL engine has: its URL, its start-up (migrations, refusals), group
/// commit with a failing statement in a group, and connection loss. The protocol's behaviour is
/// tested on both engines by the other suites.
@Suite("PostgreSQL engine")
struct PostgresStoreTests {
    static let logger = PostgresTestDatabase.logger

    @Test func urlsAreParsedAndBadOnesRefusedClearly() throws {
        let full = try PostgresLocation(url: "postgres://ada:s%40cret@db.example:6543/moon")
        #expect(full == PostgresLocation(host: "db.example", port: 6543, username: "ada", password: "s@cret", database: "moon"))
        #expect(full.description == "postgres://ada@db.example:6543/moon", "the password is never shown")
        #expect(full.tlsMode == .prefer && full.rootCertificates == nil, "TLS when the server offers it, as psql")
        let short = try PostgresLocation(url: "postgresql://ada@localhost/moon?sslmode=disable")
        #expect(short.port == 5432 && short.password == nil && short.tlsMode == .disable)
        let verified = try PostgresLocation(url: "postgres://ada@db.example/moon?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(verified.tlsMode == .verifyFull && verified.rootCertificates == "/etc/ca.pem")
        for (url, reason) in [
            ("mysql://ada@localhost/moon", "postgres://"), ("postgres://localhost/moon", "no user"),
            ("postgres://ada@localhost", "no database"), ("postgres://ada@/moon", "no host"),
            ("postgres://ada@localhost/moon?sslmode=sometimes", "disable, prefer, require, verify-ca, verify-full"),
            ("postgres://ada@localhost/moon?sslrootcert=", "names no file"),
            ("postgres://ada@localhost/moon?application_name=x", "only sslmode and sslrootcert"), ("not a url at all", "postgres://"),
        ] {
            #expect(throws: DatabaseURLError.self, "\(url)") { try PostgresLocation(url: url) }
            do { _ = try PostgresLocation(url: url) } catch { #expect(error.description.contains(reason), "\(url): \(error)") }
        }
    }

    @Test func nodesStartingAtOnceMigrateOnceAndAllOpen() async throws {
        let location = try await PostgresTestDatabase.create()
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 {
                group.addTask { try await PostgresStore.open(location, logger: Self.logger, maxConnections: 2) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stores.count == 4)
        _ = try await stores[0].createCollection(name: "posts")
        let migrations = try await stores[1].read { client, logger in
            try await client.query("SELECT count(*) FROM moonbase_migrations", logger: logger).decode(Int64.self).first { _ in true }
        }
        #expect(migrations == Int64(PostgresSchema.migrations.count))
        #expect(try await stores[2].collections().map(\.name) == ["posts"])
        for store in stores { await store.close() }
    }

    @Test func anUnreachableServerIsUnavailableAndNamesIt() async throws {
        // A port nothing listens on: bound, then closed.
        let port = try freePort()
        let location = try PostgresLocation(url: "postgres://ada:secret@127.0.0.1:\(port)/moon")
        let error = await storeError { try await PostgresStore.open(location, logger: Self.logger, connectTimeout: .seconds(2)) }
        guard case .unavailable(let message)? = error else { Issue.record("not unavailable: \(String(describing: error))"); return }
        #expect(message.contains("cannot reach PostgreSQL at postgres://ada@127.0.0.1:\(port)/moon"))
        #expect(!message.contains("secret"))
    }

    /// Every connection (the writer's and the pool's) uses TLS as the URL's `sslmode` asks; the
    /// test server offers it with a certificate of its own (`scripts/with-postgres.sh`).
    @Test func connectionsUseTLSAsTheURLAsks() async throws {
        guard let authority = ProcessInfo.processInfo.environment["MOONBASE_TEST_POSTGRES_CA"] else {
            Issue.record("MOONBASE_TEST_POSTGRES_CA is not set: run the tests with scripts/with-postgres.sh")
            return
        }
        let cases: [(PostgresLocation.TLSMode, String?, Bool)] = [
            (.disable, nil, false), (.prefer, nil, true), (.require, nil, true), (.verifyCA, authority, true), (.verifyFull, authority, true),
        ]
        for (mode, root, encrypted) in cases {
            var location = try await PostgresTestDatabase.create()
            (location.tlsMode, location.rootCertificates) = (mode, root)
            let store = try await PostgresStore.open(location, logger: Self.logger, maxConnections: 2)
            _ = try await store.createCollection(name: "posts") // the writer's connection
            let connections = try await store.read { client, logger in
                try await client.query("""
                    SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.datname = current_database()
                    """, logger: logger).collect().map { try $0.decode(Bool.self) }
            }
            #expect(connections.count >= 2 && connections.allSatisfy { $0 == encrypted }, "\(mode): \(connections)")
            await store.close()
        }
        // A certificate no trusted authority signed is refused, and the error says so.
        var unverified = try await PostgresTestDatabase.create()
        unverified.tlsMode = .verifyFull
        let refused = await storeError { try await PostgresStore.open(unverified, logger: Self.logger, connectTimeout: .seconds(5)) }
        #expect(refused?.description.lowercased().contains("certificate") == true, "\(String(describing: refused))")
        // An authority file that cannot be read.
        unverified.rootCertificates = "/nonexistent/ca.pem"
        let unreadable = await storeError { try await PostgresStore.open(unverified, logger: Self.logger) }
        #expect(unreadable?.description.contains("sslrootcert '/nonexistent/ca.pem' cannot be used") == true, "\(String(describing: unreadable))")
    }

    /// After a minute without a connection the pool stops trying for a while and fails every
    /// request at once: that is the server being away too (503), not a database error.
    @Test func thePoolGivingUpIsUnavailable() {
        for poolError in [ConnectionPoolError.connectionCreationCircuitBreakerTripped, .poolShutdown, .requestCancelled] {
            guard case .unavailable = StoreError(postgres: poolError) else {
                Issue.record("\(poolError) is \(StoreError(postgres: poolError))")
                continue
            }
        }
    }

    @Test func aWrongPasswordOrDatabaseIsRefusedClearly() async throws {
        var location = try PostgresTestDatabase.server()
        location.password = "wrong"
        let refused = await storeError { try await PostgresStore.open(location, logger: Self.logger) }
        #expect(refused?.description.contains("password authentication failed") == true, "\(String(describing: refused))")
        var missing = try PostgresTestDatabase.server()
        missing.database = "no_such_database"
        let unknown = await storeError { try await PostgresStore.open(missing, logger: Self.logger) }
        #expect(unknown?.description.contains("no_such_database") == true, "\(String(describing: unknown))")
    }

    @Test func concurrentWritesShareTransactionsAndAFailingStatementSpoilsOnlyItsOwnWrite() async throws {
        let store = try await PostgresTestDatabase.makeStore()
        _ = try await store.createCollection(name: "posts")
        let outcomes = await withTaskGroup(of: (Int, StoreError?).self) { group in
            for n in 0..<200 {
                group.addTask {
                    // A NUL byte is no valid text for PostgreSQL: the statement fails inside the group.
                    let id = n == 100 ? "bad\u{0}id" : "r\(n)"
                    let record = Record(id: id, collection: "posts", created: Timestamp.now(), updated: Timestamp.now(), version: 1,
                                        fields: ["n": .int(Int64(n))])
                    return (n, await storeError { try await store.insert(record, outbox: outbox(["h"])) })
                }
            }
            // Failures only, by write.
            return await group.reduce(into: [Int: StoreError]()) { failures, outcome in
                if let error = outcome.1 { failures[outcome.0] = error }
            }
        }
        #expect(Array(outcomes.keys) == [100])
        if case .database? = outcomes[100] {} else { Issue.record("the bad write failed with \(String(describing: outcomes[100]))") }
        #expect(try await store.list(collection: "posts", page: 1, perPage: 1, sort: .default).totalItems == 199)
        #expect(try await store.unfinishedDeliveries().count == 199, "each stored write has its delivery, the failed one none")
        let statistics = store.writeStatistics
        #expect(statistics.transactions < statistics.writes, "group commit: \(statistics)")
        await store.close()
    }

    @Test func aStoreRecoversFromLostConnectionsByItself() async throws {
        let location = try await PostgresTestDatabase.create()
        let store = try await PostgresStore.open(location, logger: Self.logger, maxConnections: 2)
        _ = try await store.createCollection(name: "posts")
        let first = try await store.insert(Record.new(collection: "posts", fields: ["n": 1])).record
        #expect(try await store.record(collection: "posts", id: first.id) == first)
        // The server ends every connection of the store (as a restart of PostgreSQL would).
        var admin = try PostgresTestDatabase.server()
        admin.database = "postgres"
        let connection = try await PostgresConnection.connect(
            on: PostgresClient.defaultEventLoopGroup.any(),
            configuration: .init(host: admin.host, port: admin.port, username: admin.username, password: admin.password,
                                 database: admin.database, tls: .disable), id: 1, logger: Self.logger).get()
        try await connection.query("""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(location.database) AND pid <> pg_backend_pid()
            """, logger: Self.logger)
        try await connection.close()
        // A call caught by the loss fails as unavailable, never otherwise; then service resumes.
        for _ in 0..<2 {
            let write = await storeError { try await store.insert(Record.new(collection: "posts", fields: ["n": 2])) }
            if let write, case .unavailable = write {} else { #expect(write == nil) }
            let read = await storeError { try await store.record(collection: "posts", id: first.id) }
            if let read, case .unavailable = read {} else { #expect(read == nil) }
        }
        _ = try await store.insert(Record.new(collection: "posts", fields: ["n": 3]))
        #expect(try await store.record(collection: "posts", id: first.id) == first)
        await store.close()
    }
}

/// A loopback port nothing listens on (bound by the kernel's choice, then closed).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw StoreError.database("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
