#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RecordStore
import Synchronization

/// One process owns a data folder (SPEC section 12): an exclusive `flock` on
/// `<data>/moonbase.lock`, taken before the store is opened. A second `serve` on the same folder
/// fails at once with the owner's pid instead of working on the same outbox. The kernel drops
/// the lock when the process dies, so a `kill -9` leaves nothing to clean up.
final class DataFolderLock: Sendable {
    static let fileName = "moonbase.lock"

    /// The locked file's descriptor; -1 once released.
    private let descriptor: Mutex<Int32>

    /// Takes the lock, creating the folder and the lock file if needed.
    /// - Throws: `ServerError.dataFolderInUse` when another process holds it.
    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServerError.dataFolderUnusable(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let owner = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw ServerError.dataFolderInUse(path: directory, owner: owner.flatMap(Int32.init))
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = Mutex(fd)
    }

    /// Lets the folder go (idempotent): another process may take it from now on.
    func release() {
        let fd = descriptor.withLock { fd -> Int32 in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { close(fd) } // closing drops the flock
    }

    deinit {
        release()
    }
}

/// Why the server cannot start, in words a user can act on.
public enum ServerError: Error, CustomStringConvertible {
    /// Another process serves from this data folder.
    case dataFolderInUse(path: String, owner: Int32?)
    /// The data folder or its lock file cannot be opened.
    case dataFolderUnusable(path: String, reason: String)
    /// The address is taken, most likely by another server.
    case portInUse(host: String, port: Int)
    /// A PostgreSQL configuration was given to the synchronous initializer, which cannot connect.
    case needsAsyncOpen(PostgresLocation)
    /// A data folder to read has no database.
    case noDatabase(path: String)

    public var description: String {
        switch self {
        case .dataFolderInUse(let path, let owner):
            "the data folder \(path) is in use by another moonbase process\(owner.map { " (pid \($0))" } ?? ""); "
                + "stop it, or give this one another --data folder"
        case .dataFolderUnusable(let path, let reason):
            "cannot open \(path): \(reason)"
        case .portInUse(let host, let port):
            "port \(port) on \(host) is already in use (another server?); choose another with --port"
        case .needsAsyncOpen(let database):
            "a server on PostgreSQL (\(database)) is made with MoonbaseServer.open(configuration:logger:)"
        case .noDatabase(let path):
            "no Moonbase database at \(path): give the data folder of a server that ran on SQLite with --data"
        }
    }
}
