import Foundation

/// Where a PostgreSQL database is: parsed from `postgres://USER[:PASS]@HOST[:PORT]/DB` (or
/// `postgresql://`), the form `serve --database` and `MOONBASE_DATABASE_URL` take.
///
/// Connections are plain TCP for now: `?sslmode=disable` is accepted, any other query is refused
/// with a clear error rather than ignored.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `url`.
    /// - Throws: `DatabaseURLError` saying what is wrong with it (never echoing the password).
    public init(url: String) throws(DatabaseURLError) {
        guard let components = URLComponents(string: url) else { throw DatabaseURLError("it is not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw DatabaseURLError("it must start with postgres:// (or postgresql://)")
        }
        guard let host = components.host, !host.isEmpty else { throw DatabaseURLError("it names no host") }
        guard let username = components.user, !username.isEmpty else { throw DatabaseURLError("it names no user") }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else { throw DatabaseURLError("it names no database (…/DB at its end)") }
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode", item.value == "disable" else {
                throw DatabaseURLError("'\(item.name)=\(item.value ?? "")' is not supported (only sslmode=disable: TLS is not supported yet)")
            }
        }
        if let port = components.port, !(1...65535).contains(port) { throw DatabaseURLError("port \(port) is out of range") }
        self.host = host
        self.port = components.port ?? 5432
        self.username = username
        self.password = components.password
        self.database = path
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)"
    }
}

/// A database URL that cannot be used, and why.
public struct DatabaseURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    init(_ reason: String) { self.reason = reason }

    public var description: String {
        "invalid database URL: \(reason); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    }
}
