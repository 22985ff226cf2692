import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// Whether a file's handlers are in use.
public enum HookFileStatus: String, Sendable {
    case loaded
    case failed
}

/// One discovered file as the listing shows it.
public struct HookFileEntry: Sendable {
    public var file: String
    public var module: String
    public var status: HookFileStatus
    /// Why the file failed, with `file:line`.
    public var error: String?
    /// Global functions the file defines, by line.
    public var functions: [String]
    /// Catalog indices of its handlers, in registration order.
    public var handlerIndices: [Int]
}

/// The handlers that match an event's type and collection (see `HookCatalog.match`).
public struct HandlerMatch: Sendable {
    /// Catalog indices, in load order.
    public var handlers: [Int]
    /// Whether some of them have a `when` or `changed`, so that which run depends on the data.
    public var isConditional: Bool
}

/// Live counters of one handler.
public struct HookHandlerStats: Sendable, Equatable {
    public var calls = 0
    public var errors = 0
    public var lastError: String?
    /// Routes only: the time their calls took, in all and at most.
    public var totalTime: Duration = .zero
    public var maxTime: Duration = .zero
}

/// Every file and handler the host knows, the same for every Lua state of the pool, with the
/// handlers' live stats. Handler indices are load order: file order, then registration order.
public final class HookCatalog: Sendable {
    public let files: [HookFileEntry]
    public let handlers: [HookHandler]
    private let stats: Mutex<[HookHandlerStats]>
    /// Handler indices by phase and event type, in load order, so matching skips most handlers.
    private let byPhaseAndType: [[Int]]
    /// What `match` found per phase, type and collection: the catalog never changes, and
    /// filtering on every event would allocate on the hot path.
    private let matches = Mutex<[MatchKey: HandlerMatch]>([:])

    private struct MatchKey: Hashable {
        var slot: Int
        var collection: String
    }

    /// The `on_hook_failed` handlers, in load order.
    public let failureHandlers: [Int]
    /// The routes, in load order.
    public let routeIndices: [Int]

    init(files: [HookFileEntry], handlers: [HookHandler]) {
        self.files = files
        self.handlers = handlers
        failureHandlers = handlers.indices.filter { handlers[$0].phase == .failure }
        routeIndices = handlers.indices.filter { handlers[$0].phase == .route }
        stats = Mutex(Array(repeating: HookHandlerStats(), count: handlers.count))
        var index: [[Int]] = []
        for phase in [HookPhase.before, .after] {
            for type in RecordEventType.allCases {
                index.append(handlers.indices.filter { handlers[$0].phase == phase && (handlers[$0].event ?? type) == type })
            }
        }
        byPhaseAndType = index
    }

    private static func slot(_ phase: HookPhase, _ type: RecordEventType) -> Int {
        let typeSlot = switch type {
        case .created: 0
        case .updated: 1
        case .deleted: 2
        }
        return (phase == .before ? 0 : 3) + typeSlot
    }

    /// The handlers of `phase` that match an event's type and collection, in load order,
    /// whatever their `when` and `changed` say.
    public func matching(_ phase: HookPhase, _ type: RecordEventType, collection: String) -> [Int] {
        match(phase, type, collection: collection).handlers
    }

    /// `matching`, and whether any of those handlers has a `when` or `changed` (then
    /// `admitted` tells which of them want a given write).
    public func match(_ phase: HookPhase, _ type: RecordEventType, collection: String) -> HandlerMatch {
        let slot = Self.slot(phase, type)
        let candidates = byPhaseAndType[slot]
        if candidates.isEmpty { return HandlerMatch(handlers: [], isConditional: false) }
        let key = MatchKey(slot: slot, collection: collection)
        if let known = matches.withLock({ $0[key] }) { return known }
        let found = candidates.filter { handlers[$0].collections?.contains(collection) ?? true }
        let match = HandlerMatch(handlers: found, isConditional: found.contains { handlers[$0].condition != nil })
        matches.withLock { $0[key] = match }
        return match
    }

    /// The handlers of `handlers` whose `when` and `changed` admit a write with `data` (and,
    /// for an update or delete, `oldData`), in order.
    public func admitted(_ handlers: [Int], data: JSONObject, oldData: JSONObject?) -> [Int] {
        handlers.filter { self.handlers[$0].condition?.admits(data: data, oldData: oldData) ?? true }
    }

    public var loadedCount: Int { files.count { $0.status == .loaded } }
    public var failedCount: Int { files.count { $0.status == .failed } }

    func recordCall(_ index: Int, error: String?) {
        stats.withLock { stats in
            stats[index].calls += 1
            if let error {
                stats[index].errors += 1
                stats[index].lastError = error
            }
        }
    }

    /// Counts one call of route `index`, with the time it took.
    func recordRouteCall(_ index: Int, error: String?, duration: Duration) {
        recordCall(index, error: error)
        stats.withLock { stats in
            stats[index].totalTime += duration
            stats[index].maxTime = max(stats[index].maxTime, duration)
        }
    }

    /// Counts one successful call of each handler in `indices`, under one lock.
    func recordSuccesses(_ indices: ArraySlice<Int>) {
        if indices.isEmpty { return }
        stats.withLock { stats in
            for index in indices { stats[index].calls += 1 }
        }
    }

    /// A snapshot of every handler's counters.
    public func statsSnapshot() -> [HookHandlerStats] {
        stats.withLock { $0 }
    }

    /// The `cron` hooks, in load order.
    public var cronHandlers: [Int] { handlers.indices.filter { handlers[$0].phase == .cron } }

    /// The listing of SPEC section 10, one entry per discovered file in load order. `cronStatus`
    /// adds what the server knows of a cron hook (by name): its next and last run.
    public func listing(cronStatus: (String) -> JSONObject = { _ in [:] }) -> JSONValue {
        let stats = statsSnapshot()
        return .array(files.map { file in
            var entry: JSONObject = [
                "file": .string(file.file), "module": .string(file.module), "status": .string(file.status.rawValue),
            ]
            if let error = file.error { entry["error"] = .string(error) }
            entry["functions"] = .array(file.functions.map { .string($0) })
            let routes = file.handlerIndices.filter { handlers[$0].phase == .route }
            let crons = file.handlerIndices.filter { handlers[$0].phase == .cron }
            entry["handlers"] = .array(file.handlerIndices.filter { handlers[$0].phase != .route && handlers[$0].phase != .cron }.map { index in
                let handler = handlers[index]
                var listed: JSONObject = [
                    "name": .string(handler.name), "event": .string(handler.eventLabel),
                    "collection": handler.collections.map { names in names.count == 1 ? .string(names[0]) : .array(names.map { .string($0) }) } ?? .null,
                    "line": .int(Int64(handler.line)),
                ]
                if handler.phase == .after { // before-hooks always hold the write and are never retried
                    listed["async"] = .bool(handler.async)
                    listed["retries"] = .int(Int64(handler.retries))
                    listed["order"] = .string(handler.order.rawValue)
                }
                handler.condition?.listed(into: &listed)
                listed["calls"] = .int(Int64(stats[index].calls))
                listed["errors"] = .int(Int64(stats[index].errors))
                listed["last_error"] = stats[index].lastError.map { .string($0) } ?? .null
                return .object(listed)
            })
            if !routes.isEmpty { entry["routes"] = .array(routes.map { .object(listedRoute($0, stats[$0])) }) }
            if !crons.isEmpty {
                entry["crons"] = .array(crons.map { index in
                    let handler = handlers[index]
                    var listed: JSONObject = [
                        "name": .string(handler.name), "schedule": .string(handler.cron?.schedule.text ?? ""),
                        "line": .int(Int64(handler.line)), "retries": .int(Int64(handler.retries)),
                        "catch_up": .bool(handler.cron?.catchUp ?? true),
                        "calls": .int(Int64(stats[index].calls)), "errors": .int(Int64(stats[index].errors)),
                    ]
                    for (key, value) in cronStatus(handler.name) { listed[key] = value }
                    return .object(listed)
                })
            }
            return .object(entry)
        })
    }

    /// A route as the listing shows it: its stats with the mean and longest call in milliseconds.
    private func listedRoute(_ index: Int, _ stats: HookHandlerStats) -> JSONObject {
        let handler = handlers[index]
        let milliseconds = { (duration: Duration) in (duration.timeInterval * 1_000_000).rounded() / 1000 }
        return [
            "name": .string(handler.name), "method": .string(handler.route?.method ?? ""), "path": .string(handler.route?.path ?? ""),
            "public": .bool(handler.route?.isPublic ?? false), "line": .int(Int64(handler.line)),
            "calls": .int(Int64(stats.calls)), "errors": .int(Int64(stats.errors)),
            "last_error": stats.lastError.map { .string($0) } ?? .null,
            "latency_ms": .object([
                "mean": .double(stats.calls == 0 ? 0 : milliseconds(stats.totalTime / stats.calls)), "max": .double(milliseconds(stats.maxTime)),
            ]),
        ]
    }
}
