import Foundation
import Logging
import RecordStore

extension MoonbaseServer {
    /// `moonbase copy-data`: copies the records of the SQLite database in `dataDirectory` into the
    /// PostgreSQL database `database` (see `RecordCopy`). Holds the data folder's lock meanwhile,
    /// so no server writes to it during the copy. Also returns how many deliveries the SQLite
    /// database has unfinished: they are not copied, and run only if a server starts on it again.
    /// - Throws: `ServerError.dataFolderInUse` while a server runs on the folder,
    ///   `ServerError.noDatabase` when it has no database, `StoreError` from either store.
    public static func copyData(from dataDirectory: String, to database: PostgresLocation, logger: Logger,
                                progress: (String, Int) -> Void) async throws -> (summary: RecordCopy.Summary, unfinished: Int) {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(SQLiteStore.databaseFileName).path
        guard FileManager.default.fileExists(atPath: path) else { throw ServerError.noDatabase(path: path) }
        let lock = try DataFolderLock(directory: dataDirectory)
        defer { lock.release() }
        let source = try SQLiteStore(directory: dataDirectory)
        let target = try await PostgresStore.open(database, logger: logger)
        let summary: RecordCopy.Summary
        do {
            summary = try await RecordCopy.copy(from: source, to: target, progress: progress)
        } catch {
            await target.close()
            throw error
        }
        await target.close()
        return (summary, try await source.unfinishedDeliveries().count)
    }
}
