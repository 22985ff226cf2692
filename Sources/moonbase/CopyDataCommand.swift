import ArgumentParser
import Foundation
import Logging
import MoonbaseServer
import RecordStore

/// `moonbase copy-data`: moves a SQLite data folder's records into PostgreSQL.
struct CopyDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy-data",
        abstract: "Copy the collections and records of a SQLite data folder into a PostgreSQL database.",
        discussion: """
            Records keep their id, created, updated and fields (versions start again at 1); no hook \
            runs on them. Records the database already has are left as they are, so the command can \
            be run again after an interruption. Stop the server on the data folder first.
            """)

    @Option(name: .customLong("data"), help: "The SQLite data folder to copy from.")
    var dataDirectory = "./moonbase_data"

    @Option(name: .customLong("database"), help: "postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=MODE] to copy into (env MOONBASE_DATABASE_URL).")
    var databaseURL: String = ProcessInfo.processInfo.environment["MOONBASE_DATABASE_URL"] ?? ""

    func validate() throws {
        if databaseURL.isEmpty { throw ValidationError("--database (or MOONBASE_DATABASE_URL) names the PostgreSQL database to copy into") }
        do { _ = try PostgresLocation(url: databaseURL) } catch { throw ValidationError("--database: \(error)") }
    }

    func run() async throws {
        var logger = Logger(label: "moonbase")
        logger.logLevel = .warning
        let (summary, unfinished) = try await MoonbaseServer.copyData(
            from: dataDirectory, to: try PostgresLocation(url: databaseURL), logger: logger) { collection, count in
            print("\(collection): \(count) records")
        }
        print("copied \(summary.records) records in \(summary.collections) collections"
              + (summary.skipped > 0 ? "; \(summary.skipped) were there already and were left as they are" : ""))
        if unfinished > 0 {
            print("note: \(unfinished) hook deliveries were unfinished in \(dataDirectory); they were not copied")
        }
    }
}
