import Foundation
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL database is, and how to reach it: parsed from
/// `postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=MODE&sslrootcert=FILE]` (or `postgresql://`),
/// the form `serve --database` and `MOONBASE_DATABASE_URL` take. `sslmode` and `sslrootcert`
/// mean what they mean to libpq (`psql`); any other parameter is refused with a clear error
/// rather than ignored.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// How a connection uses TLS: libpq's `sslmode`, `prefer` by default as there.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS if the server offers it, else plain; the certificate is not checked.
        case prefer
        /// TLS or no connection; the certificate is not checked.
        case require
        /// TLS with a certificate signed by a trusted authority (`sslrootcert`, else the system's).
        case verifyCA = "verify-ca"
        /// As `verifyCA`, and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// A PEM file of the certificate authorities to trust (`sslrootcert`); nil: the system's.
    public var rootCertificates: String?

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String,
                tlsMode: TLSMode = .prefer, rootCertificates: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tlsMode = tlsMode
        self.rootCertificates = rootCertificates
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
        var tlsMode = TLSMode.prefer
        var rootCertificates: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw DatabaseURLError("sslmode '\(item.value ?? "")' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tlsMode = mode
            case "sslrootcert":
                guard let file = item.value, !file.isEmpty else { throw DatabaseURLError("sslrootcert names no file") }
                rootCertificates = file
            default:
                throw DatabaseURLError("'\(item.name)' is not supported (only sslmode and sslrootcert are)")
            }
        }
        if let port = components.port, !(1...65535).contains(port) { throw DatabaseURLError("port \(port) is out of range") }
        self.host = host
        self.port = components.port ?? 5432
        self.username = username
        self.password = components.password
        self.database = path
        self.tlsMode = tlsMode
        self.rootCertificates = rootCertificates
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)"
    }
}

extension PostgresLocation {
    /// The TLS settings of `tlsMode` and `rootCertificates`, nil for `disable`.
    private var tlsConfiguration: TLSConfiguration? {
        guard tlsMode != .disable else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable, .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let rootCertificates { configuration.trustRoots = .file(rootCertificates) }
        return configuration
    }

    /// TLS for a connection of its own.
    /// - Throws: `DatabaseURLError` when `sslrootcert` cannot be read.
    func connectionTLS() throws(DatabaseURLError) -> PostgresConnection.Configuration.TLS {
        guard let configuration = tlsConfiguration else { return .disable }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw DatabaseURLError("sslrootcert '\(rootCertificates ?? "")' cannot be used: \(error)")
        }
        return tlsMode == .prefer ? .prefer(context) : .require(context)
    }

    /// TLS for the pool's connections.
    var clientTLS: PostgresClient.Configuration.TLS {
        guard let configuration = tlsConfiguration else { return .disable }
        return tlsMode == .prefer ? .prefer(configuration) : .require(configuration)
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
