import Foundation
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// What asked for a reload (SPEC section 13), as the listing's `last_reload.by` shows it.
public enum HookReloadTrigger: String, Sendable {
    case signal
    case api
    case watch
}

/// One load of every hook file: its catalog and the pool of Lua states that runs it. A consumer
/// leases the current generation for each use (`HookGenerations.acquire` or `withCurrent`), so a
/// handler finishes in the generation it started in, however long it waits; a generation that is
/// no longer current is shut down and let go once its last lease is returned.
public final class HookGeneration: Sendable {
    /// 1 for the load at start-up, one more for each reload that was not refused.
    public let number: Int
    public let pool: HookPool
    /// When it was loaded (ISO-8601 UTC with milliseconds).
    public let loadedAt: String
    /// The files' sources by listed path, to tell at the next reload which files changed.
    let sources: [String: [UInt8]]
    /// The digest of the files it was loaded from (`HookDirectory.digest`), which nodes compare.
    public let hooksDigest: String
    private let leases = Mutex<(count: Int, retired: Bool)>((0, false))
    /// Called once when it is retired and its last lease is returned.
    private let onDrained = Mutex<(@Sendable () -> Void)?>(nil)

    public var catalog: HookCatalog { pool.catalog }

    init(number: Int, hooks: LoadedHooks, digest: String) {
        self.number = number
        hooksDigest = digest
        pool = HookPool(hooks)
        loadedAt = Timestamp.now()
        sources = Dictionary(hooks.runtimes[0].files.map { ($0.displayPath, $0.source) }, uniquingKeysWith: { first, _ in first })
    }

    fileprivate func lease() {
        leases.withLock { $0.count += 1 }
    }

    /// Returns a lease taken with `HookGenerations.acquire`.
    public func release() {
        let drained = leases.withLock { leases in
            leases.count -= 1
            return leases.retired && leases.count == 0
        }
        if drained { onDrained.withLock { $0.take() }?() }
    }

    /// No new lease will be taken; `drained` runs once the last one is returned (at once if none is out).
    fileprivate func retire(_ drained: @escaping @Sendable () -> Void) {
        onDrained.withLock { $0 = drained }
        let idle = leases.withLock { leases in
            leases.retired = true
            return leases.count == 0
        }
        if idle { onDrained.withLock { $0.take() }?() }
    }
}

/// Why a reload was refused: a file that is loaded now failed in the new generation (or the
/// folder could not be read). The current generation keeps serving.
public struct HookReloadRefusal: Error, Sendable {
    /// The failing file as the listing names it; nil when the folder itself could not be read.
    public var file: String?
    /// The error, with `file:line`.
    public var message: String
    public var at: String
    public var by: HookReloadTrigger
}

/// How every generation is loaded: the start-up rules, the same for each reload.
public struct HookLoading: Sendable {
    public var directory: HookDirectory
    /// Lua states per generation.
    public var states: Int
    public var limits: LuaLimits
    public var modules: [LuaModule]
    public var logger: Logger

    public init(directory: HookDirectory, states: Int, limits: LuaLimits, modules: [LuaModule], logger: Logger) {
        self.directory = directory
        self.states = states
        self.limits = limits
        self.modules = modules
        self.logger = logger
    }
}

/// The one owner of the current generation of hooks (SPEC section 13). Every consumer asks it per
/// use; a reload loads every file again, off the caller's threads, into fresh Lua states, and
/// swaps the new generation in at once: what is dispatched after the swap runs in the new one,
/// what runs already finishes in its own, which is then shut down and freed. It holds a catalog
/// and a pool, whatever kinds of handlers they have.
public final class HookGenerations: Sendable {
    private let loading: HookLoading
    private let state: Mutex<State>
    /// The reload under way, which the next one waits for: reloads are serialised.
    private let lastReload = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        var current: HookGeneration
        /// Retired generations whose handlers still run.
        var draining: [HookGeneration] = []
        /// The last reload, when it was refused.
        var refusal: HookReloadRefusal?
        /// States the watchdogs of freed generations gave up (they are never freed).
        var abandoned: [AbandonedState] = []
    }

    /// Loads generation 1. A missing folder serves no hooks, with a warning.
    public init(_ loading: HookLoading) throws {
        self.loading = loading
        let files: [HookFile]
        if loading.directory.exists {
            files = try loading.directory.discover()
        } else {
            loading.logger.warning("no hooks folder: serving without hooks", metadata: ["hooks_dir": .string(loading.directory.path)])
            files = []
        }
        state = Mutex(State(current: HookGeneration(number: 1, hooks: try Self.load(files, loading),
                                                    digest: loading.directory.digest(of: files))))
    }

    private static func load(_ files: [HookFile], _ loading: HookLoading) throws -> LoadedHooks {
        try LoadedHooks.load(files: files, directory: loading.directory, states: loading.states, limits: loading.limits,
                             modules: loading.modules, logger: loading.logger)
    }

    /// The folder every generation is loaded from.
    public var directory: HookDirectory { loading.directory }

    /// The generation serving now, without a lease: for reading its catalog. To run handlers,
    /// `acquire` it (or use `withCurrent`).
    public var current: HookGeneration { state.withLock { $0.current } }

    /// The current generation's catalog.
    public var catalog: HookCatalog { current.catalog }

    /// The current generation, leased: it stays up until `release` is called on it.
    public func acquire() -> HookGeneration {
        state.withLock { state in
            state.current.lease()
            return state.current
        }
    }

    /// Runs `body` with the current generation, leased for its duration.
    public func withCurrent<T>(_ body: (HookGeneration) async throws -> T) async rethrows -> T {
        let generation = acquire()
        defer { generation.release() }
        return try await body(generation)
    }

    /// The current generation and those still finishing their handlers, newest first.
    public var live: [HookGeneration] { state.withLock { [$0.current] + $0.draining.reversed() } }

    /// The states the watchdogs gave up, in every generation, oldest first.
    public var abandoned: [AbandonedState] {
        let (generations, freed) = state.withLock { ($0.draining + [$0.current], $0.abandoned) }
        return freed + generations.flatMap(\.pool.abandoned)
    }

    /// Loads a new generation and swaps it in; returns it once it serves. Refused, leaving the
    /// current one serving, when a file loaded now fails in it; a new file that fails is listed
    /// `failed` and does not stop the others. Reloads run one after another.
    public func reload(by trigger: HookReloadTrigger) async -> Result<HookGeneration, HookReloadRefusal> {
        let task = lastReload.withLock { last in
            let previous = last
            let task = Task {
                await previous?.value
                return await self.performReload(by: trigger)
            }
            last = Task { _ = await task.value }
            return task
        }
        return await task.value
    }

    /// Gives the memory of generations freed since the last reload back to the system. Each
    /// generation's states grow on worker threads of their own, so glibc spreads them over its
    /// per-thread arenas, and keeps what they free there: without this, a server reloaded a hundred
    /// times holds half as much memory again as after the first reload, though nothing leaks.
    private static func returnFreedMemory() {
        #if os(Linux)
        _ = mallocTrim(0)
        #endif
    }

    private func performReload(by trigger: HookReloadTrigger) async -> Result<HookGeneration, HookReloadRefusal> {
        let started = ContinuousClock.now
        let loading = loading
        // The states are handed over once made, and only then touched here.
        let loaded = await Self.offThread { () -> Result<UncheckedSendable<(hooks: LoadedHooks, digest: String)>, HookReloadRefusal> in
            Self.returnFreedMemory()
            do {
                let files = try loading.directory.discover()
                return .success(UncheckedSendable((try Self.load(files, loading), loading.directory.digest(of: files))))
            } catch {
                return .failure(HookReloadRefusal(file: nil, message: "\(error)", at: Timestamp.now(), by: trigger))
            }
        }
        let current = current
        let result = loaded.flatMap { loaded -> Result<(hooks: LoadedHooks, digest: String), HookReloadRefusal> in
            let hooks = loaded.value.hooks
            let wasLoaded = Set(current.catalog.files.filter { $0.status == .loaded }.map(\.file))
            if let broken = hooks.catalog.files.first(where: { $0.status == .failed && wasLoaded.contains($0.file) }) {
                return .failure(HookReloadRefusal(file: broken.file, message: broken.error ?? "failed to load", at: Timestamp.now(), by: trigger))
            }
            return .success(loaded.value)
        }
        switch result {
        case .failure(let refusal):
            state.withLock { $0.refusal = refusal }
            loading.logger.error("hook reload refused: the current hooks keep serving", metadata: [
                "by": .string(trigger.rawValue), "file": .string(refusal.file ?? ""), "error": .string(refusal.message),
                "generation": .stringConvertible(current.number),
            ])
            return .failure(refusal)
        case .success(let (hooks, digest)):
            let generation = HookGeneration(number: current.number + 1, hooks: hooks, digest: digest)
            let old = state.withLock { state in
                let old = state.current
                state.current = generation
                state.draining.append(old)
                state.refusal = nil
                return old
            }
            old.retire { [self] in
                Task {
                    await old.pool.shutdown()
                    let abandoned = old.pool.abandoned
                    state.withLock { state in
                        state.draining.removeAll { $0 === old }
                        state.abandoned += abandoned
                    }
                }
            }
            logChanges(from: old, to: generation, by: trigger, after: ContinuousClock.now - started)
            return .success(generation)
        }
    }

    /// One line: what the reload changed.
    private func logChanges(from old: HookGeneration, to new: HookGeneration, by trigger: HookReloadTrigger, after duration: Duration) {
        let list = { (names: [String]) in Logger.MetadataValue.string(names.joined(separator: ",")) }
        let failed = new.catalog.files.filter { $0.status == .failed }.map(\.file)
        let added = new.catalog.files.map(\.file).filter { old.sources[$0] == nil }
        let removed = old.catalog.files.map(\.file).filter { new.sources[$0] == nil }
        let changed = new.catalog.files.map(\.file).filter { file in old.sources[file].map { $0 != new.sources[file] } ?? false }
        loading.logger.notice("hooks reloaded", metadata: [
            "by": .string(trigger.rawValue), "generation": .stringConvertible(new.number),
            "added": list(added), "removed": list(removed), "changed": list(changed), "failed": list(failed),
            "handlers": .stringConvertible(new.catalog.handlers.count),
            "duration_ms": .stringConvertible(Int((duration.timeInterval * 1000).rounded())),
        ])
    }

    /// Runs blocking work (loading Lua files) on a thread of its own, off Swift's cooperative threads.
    private static func offThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.name = "moonbase-hooks-reload"
            thread.start()
        }
    }

    /// The listing of SPEC sections 10 and 13: the current generation's, each entry with
    /// `generation` and `loaded_at`, and the file that made the last reload be refused with
    /// `last_reload`. `cronStatus` adds what the server knows of a cron (see `HookCatalog.listing`).
    public func listing(cronStatus: (String) -> JSONObject = { _ in [:] }) -> JSONValue {
        let (current, refusal) = state.withLock { ($0.current, $0.refusal) }
        guard case .array(let entries) = current.catalog.listing(cronStatus: cronStatus) else { return .array([]) }
        return .array(entries.map { entry in
            guard case .object(var object) = entry else { return entry }
            object["generation"] = .int(Int64(current.number))
            object["loaded_at"] = .string(current.loadedAt)
            if let refusal, case .string(refusal.file)? = object["file"] {
                object["last_reload"] = .object([
                    "at": .string(refusal.at), "by": .string(refusal.by.rawValue), "refused": .bool(true), "error": .string(refusal.message),
                ])
            }
            return .object(object)
        })
    }

    /// Lets every generation's queued work finish, then stops their workers.
    public func shutdown() async {
        for generation in live { await generation.pool.shutdown() }
    }
}

#if os(Linux)
/// glibc's `malloc_trim` (in `malloc.h`, which the Glibc module leaves out).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> CInt
#endif
