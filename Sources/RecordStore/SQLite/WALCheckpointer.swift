import Foundation
import GRDB
import ServiceLifecycle

/// Checkpoints the WAL from a connection of its own, so that the writer does not stop for it.
///
/// Every `interval` a PASSIVE checkpoint copies what the WAL holds back into the database file
/// without taking any lock a write needs. Once the WAL is `restartFrames` frames long, a RESTART
/// checkpoint follows: its pages are mostly copied by then, so it holds writes back only for the
/// last few and the sync, and the next write starts the WAL over (under steady writes a PASSIVE
/// checkpoint never catches up with the end of the WAL, which would then only grow). The
/// writer's own automatic checkpoint stays, set higher, in case this one falls behind or does not
/// run (a store opened by a tool, not a server).
///
/// A service: the server runs it beside its others, and it stops with them.
final class WALCheckpointer: Service, Sendable {
    private let connection: DatabaseQueue
    private let interval: Duration
    private let restartFrames: Int
    /// Checkpoints wait for locks (RESTART up to a second): off the cooperative threads.
    private let queue = DispatchQueue(label: "moonbase-checkpoints", qos: .utility)

    init(path: String, interval: Duration, restartFrames: Int) throws {
        var configuration = Configuration()
        configuration.label = "moonbase-checkpoints"
        configuration.busyMode = .timeout(1) // RESTART waits for the write transaction under way
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.interval = interval
        self.restartFrames = restartFrames
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                await self.checkpoint()
            }
        }
    }

    /// One round; a failed checkpoint (busy, or the file gone) is tried again at the next.
    private func checkpoint() async {
        let (connection, restartFrames) = (connection, restartFrames)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                _ = try? connection.writeWithoutTransaction { db in
                    if try db.checkpoint(.passive).walFrameCount >= restartFrames { _ = try db.checkpoint(.restart) }
                }
                done.resume()
            }
        }
    }
}
