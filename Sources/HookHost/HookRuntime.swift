import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel

/// A handler registered by a file in one Lua state, before the catalog is assembled.
struct LoadedHandler {
    var handler: HookHandler
    var ref: LuaRef
    /// Whether `options.name` named it (else it is named after a global function, or anonymous).
    var named: Bool
    /// The line of the registration call (`line` is the handler function's), where errors about
    /// the registration point.
    var registeredAt: Int
}

/// What loading one file into one Lua state gave.
struct FileLoad {
    var handlers: [LoadedHandler] = []
    var functions: [String] = []
    var error: LuaError?
}

/// One Lua state with every hook file loaded: the unit of work of the pool. Used by one thread
/// at a time.
public final class HookRuntime {
    let state: LuaState
    let logger: Logger
    let loads: [FileLoad]
    /// The event's field names and type strings, interned once: building the event is most of
    /// the cost of a handler call.
    private let eventKeys: EventKeys
    /// Handler functions by the catalog's handler index.
    var refs: [LuaRef?] = []
    var catalog: HookCatalog!
    /// Set by the owner of this runtime's thread (the pool's worker): runs a waiting handler's
    /// operation off the thread, then calls `then` back on the thread with its outcome.
    var waiter: ((LuaSuspendedCall, _ then: @escaping (LuaResumption) -> Void) -> Void)?
    /// Which handler runs, for the pool's watchdog (see `HookActivity`).
    let activity = HookActivity()
    /// What the runtime was made of, so that the pool can make a fresh one like it.
    let files: [HookFile]
    let directory: HookDirectory
    let modules: [LuaModule]

    /// Loads every file, all-or-nothing per file (SPEC section 2).
    init(files: [HookFile], directory: HookDirectory, limits: LuaLimits, modules: [LuaModule], logger: Logger) throws(LuaError) {
        self.logger = logger
        self.files = files
        self.directory = directory
        self.modules = modules
        state = try LuaState(limits: limits, logger: logger, moduleLoader: directory.moduleLoader, modules: modules)
        loads = files.map { [state] file in HookRuntime.load(file, into: state) }
        eventKeys = EventKeys(state)
    }

    private static func load(_ file: HookFile, into state: LuaState) -> FileLoad {
        if let readError = file.readError {
            return FileLoad(error: LuaError(kind: .runtime, message: readError))
        }
        let registrar = Registrar(file: file)
        let extras = registrar.makeGlobals(in: state)
        defer {
            state.release(extras)
            registrar.closed = true
        }
        let loaded = state.makeEnvironment(chunkName: file.chunkName, extras: extras).flatMap { environment in
            state.load(file.source, chunkName: file.chunkName, environment: environment).flatMap { chunk in
                defer { state.release(chunk) }
                let top = state.top
                defer { state.setTop(top) }
                return state.call(chunk).map { _ in environment }
            }
        }
        switch loaded {
        case .failure(let error):
            for pending in registrar.pending { state.release(pending.ref) }
            return FileLoad(error: error)
        case .success(let environment):
            defer { state.release(environment) }
            let globals = state.globalFunctions(in: environment, definedIn: file.chunkName)
            var handlers = registrar.pending
            for index in handlers.indices where !handlers[index].named {
                let identity = state.identity(of: handlers[index].ref)
                if let global = globals.first(where: { $0.identity == identity }) {
                    handlers[index].handler.name = global.name
                }
            }
            return FileLoad(handlers: handlers, functions: globals.map(\.name))
        }
    }

    // MARK: Dispatch

    /// Pushes the event table of SPEC section 4; returns its stack index.
    private func pushEvent(_ event: RecordEvent) -> Int32 {
        let table = state.pushTable(fields: 7)
        let keys = eventKeys
        set(keys.id, event.id, in: table)
        state.push(keys.type)
        state.push(keys.name(of: event.type))
        state.rawSet(table)
        set(keys.collection, event.collection, in: table)
        set(keys.recordID, event.recordID, in: table)
        state.push(keys.data)
        state.push(event.data)
        state.rawSet(table)
        if let oldData = event.oldData {
            state.push(keys.oldData)
            state.push(oldData)
            state.rawSet(table)
        }
        set(keys.timestamp, event.timestamp, in: table)
        state.push(keys.attempt)
        state.push(.int(Int64(event.attempt)))
        state.rawSet(table)
        if event.redelivered {
            state.push(keys.redelivered)
            state.push(.bool(true))
            state.rawSet(table)
        }
        return table
    }

    private func set(_ key: LuaString, _ value: String, in table: Int32) {
        state.push(key)
        state.push(value)
        state.rawSet(table)
    }

    /// Runs the after-handlers `handlers` (catalog indices) in order, each isolated: an error or a
    /// budget exceeded is logged and counted, and the next handler still runs. They share one
    /// event table, built once. `afterEach`, if given, is told each handler's outcome once it
    /// has run and been counted; `completion` once all have. Both are called on this runtime's
    /// thread: at once, or later if a handler waits for the host.
    public func runAfter(_ event: RecordEvent, handlers: [Int], afterEach: ((HookOutcome) -> Void)? = nil,
                         completion: @escaping () -> Void = {}) {
        let base = state.top
        let run = AfterRun(handlers: handlers, context: HookCallContext(event), afterEach: afterEach, completion: completion)
        continueAfter(run, .record(event), at: handlers.startIndex, table: pushEvent(event), base: base)
    }

    /// Runs `on_hook_failed` handlers with `payload` (the failed delivery) as their event.
    public func runFailureHandlers(_ payload: JSONObject, handlers: [Int], completion: @escaping () -> Void = {}) {
        let base = state.top
        let run = AfterRun(handlers: handlers, context: nil, afterEach: nil, completion: completion)
        continueAfter(run, .failedDelivery, at: handlers.startIndex, table: state.push(payload), base: base)
    }

    /// Runs cron hook `index` with `event` (`{type = "cron", id, name, scheduled_at, timestamp,
    /// attempt}`); `completion` hears how it went, on this runtime's thread.
    public func runCron(_ index: Int, event: JSONObject, completion: @escaping (HookOutcome) -> Void) {
        let base = state.top
        let run = AfterRun(handlers: [index], context: nil, afterEach: completion, completion: {})
        continueAfter(run, .cron, at: 0, table: state.push(event), base: base)
    }

    /// The handlers of one event from `start` on. `resumed` is the outcome of the handler at
    /// `start` if it waited and has just been resumed, `started` when that handler was called.
    /// (`subject` is passed apart from `run`: kept in it, it would be copied on every event.)
    private func continueAfter(_ run: AfterRun, _ subject: RunSubject, at start: Int, table: Int32, base: Int32,
                               resumed: LuaCallOutcome? = nil, started: ContinuousClock.Instant? = nil) {
        var uncounted = start // successes are counted in batches, under one lock
        var resumed = resumed
        state.callContext = run.context
        for position in start..<run.handlers.endIndex {
            let index = run.handlers[position]
            guard let ref = refs[index] else { continue }
            let callStarted = resumed == nil ? (run.afterEach == nil ? nil : ContinuousClock.now) : started
            let outcome = resumed ?? watched(index) { state.callHandler(ref, argument: table) }
            resumed = nil
            var failure: LuaError?
            switch outcome {
            case .returned: break
            case .failed(let error): failure = error
            case .suspended(let call):
                catalog.recordSuccesses(run.handlers[uncounted..<position])
                wait(call, of: index, table: table, base: base) { table, base, outcome in
                    self.continueAfter(run, subject, at: position, table: table, base: base, resumed: outcome, started: callStarted)
                }
                return
            }
            state.setTop(table)
            if failure != nil || run.afterEach != nil {
                catalog.recordSuccesses(run.handlers[uncounted..<position])
                uncounted = position + 1
                if let failure { fail(index, subject, failure) } else { catalog.recordCall(index, error: nil) }
                run.afterEach?(HookOutcome(handler: index, error: failure, duration: callStarted.map { ContinuousClock.now - $0 } ?? .zero))
            }
        }
        catalog.recordSuccesses(run.handlers[uncounted...])
        state.setTop(base)
        run.completion()
    }

    /// Runs the before-handlers in order. Each may change `event.data` in place or return a new
    /// table; the first refusal or failure stops the chain. `completion` hears the decision on
    /// this runtime's thread: at once, or later if a handler waits for the host.
    public func runBefore(_ event: RecordEvent, handlers: [Int], completion: @escaping (BeforeOutcome) -> Void) {
        let base = state.top
        continueBefore(BeforeRun(event: event, handlers: handlers, context: HookCallContext(event), completion: completion),
                       at: handlers.startIndex, table: pushEvent(event), base: base)
    }

    private func continueBefore(_ run: BeforeRun, at start: Int, table eventTable: Int32, base: Int32, resumed: LuaCallOutcome? = nil) {
        let event = run.event
        var resumed = resumed
        state.callContext = run.context
        for position in start..<run.handlers.endIndex {
            let index = run.handlers[position]
            guard let ref = refs[index] else { continue }
            let outcome = resumed ?? watched(index) { state.callHandler(ref, argument: eventTable) }
            resumed = nil
            switch outcome {
            case .returned(let count):
                catalog.recordCall(index, error: nil)
                if count > 0 && state.isTable(at: eventTable + 1) {
                    state.setField("data", copyOf: eventTable + 1, in: eventTable)
                }
                state.setTop(eventTable)
            case .suspended(let call):
                wait(call, of: index, table: eventTable, base: base) { table, base, outcome in
                    self.continueBefore(run, at: position, table: table, base: base, resumed: outcome)
                }
                return
            case .failed(let error):
                state.setTop(base)
                if let refusal = Refusal(error) {
                    catalog.recordCall(index, error: nil)
                    logger.info("hook refused the write", metadata: handlerMetadata(index, event).merging([
                        "reason": .string(refusal.message), "status": .stringConvertible(refusal.status),
                    ]) { $1 })
                    return run.completion(.rejected(message: refusal.message, status: refusal.status))
                }
                fail(index, .record(event), error)
                return run.completion(.failed(error.message))
            }
        }
        let dataIndex = state.pushField("data", of: eventTable)
        let data: JSONObject
        do throws(LuaConversionError) {
            guard case .object(let object) = try state.json(at: dataIndex, orderHint: .object(event.data)) else {
                throw LuaConversionError("event.data must be a table of fields")
            }
            data = object
        } catch {
            state.setTop(base)
            let message = "before-hooks left data that cannot be stored: \(error.message)"
            logger.error("hook failed", metadata: ["collection": .string(event.collection), "error": .string(message)])
            return run.completion(.failed(message))
        }
        state.setTop(base)
        run.completion(.proceed(data))
    }

    /// Runs route `index` on `request` (the `req` table of SPEC section 14) and reads what it
    /// returned. `completion` hears the outcome on this runtime's thread: at once, or later if
    /// the handler waits for the host. A route handles no event: its `records` writes start
    /// at depth 1, and its `webhook` messages get ids of their own.
    public func runRoute(_ index: Int, request: JSONObject, completion: @escaping (RouteOutcome) -> Void) {
        let base = state.top
        let run = RouteRun(index: index, started: .now, completion: completion)
        continueRoute(run, table: state.push(request), base: base)
    }

    private func continueRoute(_ run: RouteRun, table: Int32, base: Int32, resumed: LuaCallOutcome? = nil) {
        state.callContext = nil
        guard let ref = refs[run.index] else {
            state.setTop(base)
            return run.completion(.failed("route not loaded in this Lua state"))
        }
        let outcome = resumed ?? watched(run.index) { state.callHandler(ref, argument: table) }
        var failure: LuaError?
        var answer = RouteOutcome.failed("")
        switch outcome {
        case .suspended(let call):
            wait(call, of: run.index, table: table, base: base) { table, base, outcome in
                self.continueRoute(run, table: table, base: base, resumed: outcome)
            }
            return
        case .returned(let count):
            do throws(LuaConversionError) {
                let value = count > 0 ? try state.json(at: table + 1) : .null
                switch RouteReply.make(from: value) {
                case .success(let reply): answer = .reply(reply)
                case .failure(let error): failure = LuaError(kind: .runtime, message: "\(location(run.index)): \(error.message)")
                }
            } catch {
                failure = LuaError(kind: .runtime, message: "\(location(run.index)): a route's answer cannot be sent: \(error.message)")
            }
        case .failed(let error):
            if let refusal = Refusal(error) {
                answer = .rejected(message: refusal.message, status: refusal.status)
            } else {
                failure = error
            }
        }
        state.setTop(base)
        let duration = ContinuousClock.now - run.started
        if let failure {
            catalog.recordRouteCall(run.index, error: failure.message, duration: duration)
            log(run.index, .route, failure)
            answer = .failed(failure.message)
        } else {
            catalog.recordRouteCall(run.index, error: nil, duration: duration)
        }
        run.completion(answer)
    }

    /// `file:line` of handler `index`.
    private func location(_ index: Int) -> String {
        "\(catalog.handlers[index].file):\(catalog.handlers[index].line)"
    }

    /// Parks a chain whose handler waits: the event table is kept in the registry and the host's
    /// stack given back, so the state can run other events meanwhile. Once the operation is done,
    /// `next` gets the event table (pushed again) and the resumed handler's outcome.
    private func wait(_ call: LuaSuspendedCall, of handler: Int, table: Int32, base: Int32,
                      next: @escaping (_ table: Int32, _ base: Int32, LuaCallOutcome) -> Void) {
        let anchored = state.reference(at: table)
        state.setTop(base)
        let resume = { (resumption: LuaResumption) in
            let base = self.state.top
            let table = self.state.push(anchored)
            self.state.release(anchored)
            next(table, base, self.watched(handler) { self.state.resume(call, with: resumption) })
        }
        guard let waiter else { return resume(.error("this runtime cannot wait for the host")) }
        waiter(call, resume)
    }

    /// Runs Lua code of handler `index` with `activity` saying so. If the watchdog gave this
    /// runtime up meanwhile, the thread never comes back from here: whatever waited for the
    /// handler has been answered, and its state must never be touched again.
    private func watched(_ index: Int, _ call: () -> LuaCallOutcome) -> LuaCallOutcome {
        activity.begin(index)
        let outcome = call()
        activity.end()
        return outcome
    }

    private func fail(_ index: Int, _ subject: RunSubject, _ error: LuaError) {
        catalog.recordCall(index, error: error.message)
        log(index, subject, error)
    }

    /// Logs a handler's failure with its file, line and traceback.
    private func log(_ index: Int, _ subject: RunSubject, _ error: LuaError) {
        var metadata: Logger.Metadata
        switch subject {
        case .record(let event): metadata = handlerMetadata(index, event)
        case .failedDelivery: metadata = handlerMetadata(index).merging(["event": .string("hook.failed")]) { $1 }
        case .route: metadata = handlerMetadata(index).merging(["route": .string(catalog.handlers[index].collectionLabel)]) { $1 }
        case .cron: metadata = handlerMetadata(index).merging(["event": "cron", "schedule": .string(catalog.handlers[index].collectionLabel)]) { $1 }
        }
        metadata["error"] = .string(error.message)
        if let traceback = error.traceback { metadata["traceback"] = .string(traceback) }
        logger.error("hook failed", metadata: metadata)
    }

    private func handlerMetadata(_ index: Int, _ event: RecordEvent) -> Logger.Metadata {
        handlerMetadata(index).merging([
            "event": .string(event.type.rawValue), "collection": .string(event.collection), "event_id": .string(event.id),
            "attempt": .stringConvertible(event.attempt),
        ]) { $1 }
    }

    private func handlerMetadata(_ index: Int) -> Logger.Metadata {
        let handler = catalog.handlers[index]
        return ["file": .string(handler.file), "line": .stringConvertible(handler.line), "handler": .string(handler.name)]
    }
}

private struct EventKeys {
    let id, type, collection, recordID, data, oldData, timestamp, attempt, redelivered: LuaString
    let created, updated, deleted: LuaString

    init(_ state: LuaState) {
        id = state.intern("id")
        type = state.intern("type")
        collection = state.intern("collection_name")
        recordID = state.intern("record_id")
        data = state.intern("data")
        oldData = state.intern("old_data")
        timestamp = state.intern("timestamp")
        attempt = state.intern("attempt")
        redelivered = state.intern("redelivered")
        created = state.intern(RecordEventType.created.rawValue)
        updated = state.intern(RecordEventType.updated.rawValue)
        deleted = state.intern(RecordEventType.deleted.rawValue)
    }

    func name(of type: RecordEventType) -> LuaString {
        switch type {
        case .created: created
        case .updated: updated
        case .deleted: deleted
        }
    }
}

/// A run of after-handlers in progress (see `HookRuntime.continueAfter`).
private struct AfterRun {
    var handlers: [Int]
    var context: HookCallContext?
    var afterEach: ((HookOutcome) -> Void)?
    var completion: () -> Void
}

/// A run of before-handlers in progress.
private struct BeforeRun {
    var event: RecordEvent
    var handlers: [Int]
    var context: HookCallContext
    var completion: (BeforeOutcome) -> Void
}

/// What the handlers of a run receive.
private enum RunSubject {
    case record(RecordEvent)
    /// A dead delivery, for `on_hook_failed`.
    case failedDelivery
    /// An HTTP request to a route.
    case route
    /// A cron hook's run.
    case cron
}

/// A route's call in progress.
private struct RouteRun {
    var index: Int
    var started: ContinuousClock.Instant
    var completion: (RouteOutcome) -> Void
}

/// What a host function learns of the handler calling it, as `LuaArguments.context`. (A small
/// struct: it fits an existential's inline buffer, so passing it to every call allocates nothing.)
public struct HookCallContext: Sendable {
    /// The event being handled.
    public let eventID: String
    /// How many hook-made writes led to this event (0: it came from outside).
    public let depth: Int

    init(_ event: RecordEvent) {
        eventID = event.id
        depth = event.depth
    }
}

/// How one handler call went.
public struct HookOutcome: Sendable {
    /// The handler's catalog index.
    public var handler: Int
    /// Why it failed (message with `file:line`, traceback), or nil.
    public var error: LuaError?
    public var duration: Duration
}

/// A `reject(message, status)` raised by a before-hook.
struct Refusal {
    static let marker = "__moonbase_reject"
    var message: String
    var status: Int

    init?(_ error: LuaError) {
        guard case .object(let object)? = error.value, object[Refusal.marker] == .bool(true),
              case .string(let message)? = object["message"], case .int(let status)? = object["status"]
        else { return nil }
        self.message = message
        self.status = Int(status)
    }
}
