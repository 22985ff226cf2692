import Foundation
import GRDB

/// Checkpoints the WAL from a connection of its own, so that the writer does not stop for it.
///
/// Every `interval` a PASSIVE checkpoint copies what the WAL holds back into the database file
/// without taking any lock a write needs. Once the WAL is `restartFrames` frames long, a RESTART
/// checkpoint follows: its pages are mostly copied by then, so it holds writes back only for the
/// last few and the sync, and the next write starts the WAL over (under steady writes a PASSIVE
/// checkpoint never catches up with the end of the WAL, which would then only grow). The
/// writer's own automatic checkpoint stays, set higher, in case this one falls behind.
final class WALCheckpointer: @unchecked Sendable { // the timer is only resumed and cancelled, both thread-safe
    private let timer: any DispatchSourceTimer

    init(path: String, interval: DispatchTimeInterval, restartFrames: Int) throws {
        var configuration = Configuration()
        configuration.label = "moonbase-checkpoints"
        configuration.busyMode = .timeout(1) // RESTART waits for the write transaction under way
        let connection = try DatabaseQueue(path: path, configuration: configuration)
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "moonbase-checkpoints", qos: .utility))
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler {
            // A failed checkpoint (busy, or the file gone) is tried again at the next tick.
            _ = try? connection.writeWithoutTransaction { db in
                if try db.checkpoint(.passive).walFrameCount >= restartFrames { _ = try db.checkpoint(.restart) }
            }
        }
        timer.resume()
    }

    deinit {
        timer.cancel()
    }
}
