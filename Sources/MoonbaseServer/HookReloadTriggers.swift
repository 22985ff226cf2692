import Dispatch
import Foundation
import HookHost
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The reloads nobody asks for over HTTP (SPEC section 13): `kill -HUP`, and with `serve
/// --watch` a change to a `*.lua` file of the hooks folder, once the folder has been quiet for
/// `quiet` (an editor's save burst is one reload). Runs as a service until graceful shutdown.
struct HookReloadTriggers: Service {
    let folder: String
    let watch: Bool
    let logger: Logger
    var quiet: Duration = .milliseconds(200)
    let reload: @Sendable (HookReloadTrigger) async -> Void

    init(folder: String, watch: Bool, logger: Logger, reload: @escaping @Sendable (HookReloadTrigger) async -> Void) {
        self.folder = folder
        self.watch = watch
        self.logger = logger
        self.reload = reload
    }

    func run() async throws {
        let (triggers, continuation) = AsyncStream.makeStream(of: HookReloadTrigger.self, bufferingPolicy: .bufferingNewest(64))
        signal(SIGHUP, SIG_IGN) // delivered to the dispatch source instead of ending the process
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { continuation.yield(.signal) }
        hangup.resume()
        var watcher: HookFolderWatcher?
        if watch {
            let settled = QuietPeriod(quiet) { continuation.yield(.watch) }
            do {
                watcher = try HookFolderWatcher(folder: folder) { settled.changed() }
                logger.info("watching the hooks folder for changes", metadata: ["hooks_dir": .string(folder)])
            } catch {
                logger.error("cannot watch the hooks folder; reload with kill -HUP or POST /api/v1/hooks/reload",
                             metadata: ["hooks_dir": .string(folder), "error": .string("\(error)")])
            }
        }
        defer {
            hangup.cancel()
            watcher?.stop()
        }
        await withGracefulShutdownHandler {
            for await trigger in triggers { await reload(trigger) } // one after another
        } onGracefulShutdown: {
            continuation.finish()
        }
    }
}

/// Calls `settled` once no change has been reported for `quiet`: a burst of changes is one call.
final class QuietPeriod: Sendable {
    private let quiet: Duration
    private let settled: @Sendable () -> Void
    /// The last change, and whether a wait for the quiet is under way.
    private let state = Mutex<(last: ContinuousClock.Instant, waiting: Bool)>((.now, false))

    init(_ quiet: Duration, settled: @escaping @Sendable () -> Void) {
        self.quiet = quiet
        self.settled = settled
    }

    /// Something changed (any thread).
    func changed() {
        let start = state.withLock { state in
            state.last = .now
            defer { state.waiting = true }
            return !state.waiting
        }
        guard start else { return }
        Task {
            var due = state.withLock { $0.last } + quiet
            while true {
                try? await Task.sleep(until: due, clock: .continuous)
                let quietNow = state.withLock { state in
                    due = state.last + quiet
                    if due > .now { return false }
                    state.waiting = false
                    return true
                }
                if quietNow { return settled() }
            }
        }
    }
}
