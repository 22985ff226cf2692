import Foundation
import Logging
import PostgresNIO
import RecordStore

/// Databases on the test PostgreSQL server, whose URL `make test` (through
/// `scripts/with-postgres.sh`) exports as `MOONBASE_TEST_POSTGRES_URL`. Each store gets a new
/// database of its own, so tests run in parallel. Without the URL, or when the server does not
/// answer, a test that needs it fails: it never skips.
public enum PostgresTestDatabase {
    public static let urlVariable = "MOONBASE_TEST_POSTGRES_URL"

    /// The server, from the environment.
    public static func server() throws -> PostgresLocation {
        guard let url = ProcessInfo.processInfo.environment[urlVariable], !url.isEmpty else {
            throw MissingPostgres(reason: "\(urlVariable) is not set: run the tests with `make test` or scripts/with-postgres.sh")
        }
        return try PostgresLocation(url: url)
    }

    /// A new, empty database on the test server; where it is.
    public static func create() async throws -> PostgresLocation {
        var location = try server()
        let name = "moonbase_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        _ = try await strings(location, "CREATE DATABASE \(name)")
        location.database = name
        return location
    }

    /// The first column of what `sql` returns on a connection of its own to `location`, as text
    /// (for tests that look at a database behind the server's back).
    public static func strings(_ location: PostgresLocation, _ sql: String) async throws -> [String] {
        let configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.username,
                                                             password: location.password, database: location.database, tls: .disable)
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(on: PostgresClient.defaultEventLoopGroup.any(), configuration: configuration,
                                                              id: 0, logger: logger).get()
        } catch {
            throw MissingPostgres(reason: "the test PostgreSQL server at \(location) does not answer: \(String(reflecting: error))")
        }
        defer { Task { try? await connection.close() } }
        var values: [String] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
            values.append(try row.decode(String.self))
        }
        return values
    }

    /// `location` as the URL `serve --database` takes, password included (the location's
    /// description leaves it out).
    public static func url(_ location: PostgresLocation) -> String {
        let allowed = CharacterSet.urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/"))
        let user = location.username.addingPercentEncoding(withAllowedCharacters: allowed) ?? location.username
        let password = location.password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0) } ?? ""
        var query: [String] = []
        if location.tlsMode != .prefer { query.append("sslmode=\(location.tlsMode.rawValue)") }
        if let root = location.rootCertificates { query.append("sslrootcert=\(root)") }
        return "postgres://\(user)\(password)@\(location.host):\(location.port)/\(location.database)"
            + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// A store on a new database.
    public static func makeStore(events: (any CommittedEventSink)? = nil) async throws -> PostgresStore {
        try await PostgresStore.open(try await create(), events: events, logger: logger, maxConnections: 2)
    }

    public static let logger = Logger(label: "moonbase-tests") { _ in SwiftLogNoOpLogHandler() }
}

/// The test PostgreSQL server is missing or does not answer.
public struct MissingPostgres: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
