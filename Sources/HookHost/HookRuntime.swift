import Logging
import LuaRuntime
import MoonbaseJSON

/// A handler registered by a file in one Lua state, before the catalog is assembled.
struct LoadedHandler {
    var handler: HookHandler
    var ref: LuaRef
    /// Whether `options.name` named it (else it is named after a global function, or anonymous).
    var named: Bool
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

    /// Loads every file, all-or-nothing per file (SPEC section 2).
    init(files: [HookFile], directory: HookDirectory, limits: LuaLimits, logger: Logger) throws(LuaError) {
        self.logger = logger
        state = try LuaState(limits: limits, logger: logger, moduleLoader: directory.moduleLoader)
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
    private func pushEvent(_ event: HookEvent) -> Int32 {
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
    /// has run and been counted.
    public func runAfter(_ event: HookEvent, handlers: [Int], afterEach: ((HookOutcome) -> Void)? = nil) {
        let base = state.top
        defer { state.setTop(base) }
        run(handlers, on: pushEvent(event), afterEach: afterEach) { index, error in self.fail(index, event, error) }
    }

    /// Runs `on_hook_failed` handlers with `payload` (the failed delivery) as their event.
    public func runFailureHandlers(_ payload: JSONObject, handlers: [Int]) {
        let base = state.top
        defer { state.setTop(base) }
        run(handlers, on: state.push(payload), afterEach: nil) { index, error in
            self.catalog.recordCall(index, error: error.message)
            self.logger.error("hook failed", metadata: self.handlerMetadata(index).merging([
                "event": .string("hook.failed"), "error": .string(error.message), "traceback": .string(error.traceback ?? ""),
            ]) { $1 })
        }
    }

    private func run(_ handlers: [Int], on table: Int32, afterEach: ((HookOutcome) -> Void)?, failed: (Int, LuaError) -> Void) {
        var uncounted = handlers.startIndex // successes are counted in batches, under one lock
        for position in handlers.indices {
            let index = handlers[position]
            guard let ref = refs[index] else { continue }
            let started = afterEach == nil ? nil : ContinuousClock.now
            let result = state.call(ref, argument: table)
            state.setTop(table)
            var failure: LuaError?
            if case .failure(let error) = result { failure = error }
            if failure != nil || afterEach != nil {
                catalog.recordSuccesses(handlers[uncounted..<position])
                uncounted = position + 1
                if let failure { failed(index, failure) } else { catalog.recordCall(index, error: nil) }
                afterEach?(HookOutcome(handler: index, error: failure, duration: started.map { ContinuousClock.now - $0 } ?? .zero))
            }
        }
        catalog.recordSuccesses(handlers[uncounted...])
    }

    /// Runs the before-handlers in order. Each may change `event.data` in place or return a new
    /// table; the first refusal or failure stops the chain.
    public func runBefore(_ event: HookEvent, handlers: [Int]) -> BeforeOutcome {
        let base = state.top
        defer { state.setTop(base) }
        let eventTable = pushEvent(event)
        for index in handlers {
            guard let ref = refs[index] else { continue }
            let result = state.call(ref, argument: eventTable)
            switch result {
            case .success(let count):
                catalog.recordCall(index, error: nil)
                if count > 0 && state.isTable(at: eventTable + 1) {
                    state.setField("data", copyOf: eventTable + 1, in: eventTable)
                }
                state.setTop(eventTable)
            case .failure(let error):
                if let refusal = Refusal(error) {
                    catalog.recordCall(index, error: nil)
                    logger.info("hook refused the write", metadata: handlerMetadata(index, event).merging([
                        "reason": .string(refusal.message), "status": .stringConvertible(refusal.status),
                    ]) { $1 })
                    return .rejected(message: refusal.message, status: refusal.status)
                }
                fail(index, event, error)
                return .failed(error.message)
            }
        }
        let dataIndex = state.pushField("data", of: eventTable)
        do throws(LuaConversionError) {
            guard case .object(let data) = try state.json(at: dataIndex, orderHint: .object(event.data)) else {
                throw LuaConversionError("event.data must be a table of fields")
            }
            return .proceed(data)
        } catch {
            let message = "before-hooks left data that cannot be stored: \(error.message)"
            logger.error("hook failed", metadata: ["collection": .string(event.collection), "error": .string(message)])
            return .failed(message)
        }
    }

    private func fail(_ index: Int, _ event: HookEvent, _ error: LuaError) {
        catalog.recordCall(index, error: error.message)
        var metadata = handlerMetadata(index, event)
        metadata["error"] = .string(error.message)
        if let traceback = error.traceback { metadata["traceback"] = .string(traceback) }
        logger.error("hook failed", metadata: metadata)
    }

    private func handlerMetadata(_ index: Int, _ event: HookEvent) -> Logger.Metadata {
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
    let id, type, collection, recordID, data, oldData, timestamp, attempt: LuaString
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
