import CLua
import Logging
import MoonbaseJSON

/// A handle to a value kept alive in the Lua registry.
public struct LuaRef: Hashable, Sendable {
    let raw: Int32
}

/// A string kept alive in the registry (see `LuaState.intern`).
public struct LuaString: Sendable {
    let ref: LuaRef
}

/// How `require` finds a module: given its name, the module's source and chunk name
/// (`@hooks/_utils.lua`), or a message saying why there is none.
public typealias LuaModuleLoader = @Sendable (String) -> Result<(source: [UInt8], chunkName: String), LuaConversionError>

/// One Lua 5.4 state with its sandbox, budgets and memory cap.
///
/// Not thread-safe: a state must only ever be used by one thread at a time (the hook host's
/// workers guarantee that). Every call into Lua goes through a protected call or a coroutine
/// resume, and Swift functions exposed to Lua never raise (see `CLua/shim.h`).
public final class LuaState {
    let L: OpaquePointer
    let runtime: UnsafeMutablePointer<mb_runtime>
    public let limits: LuaLimits
    /// `limits.wallClock` in nanoseconds, computed once: `Duration.components` is not free.
    let wallClockNanoseconds: Int64
    public let logger: Logger
    let moduleLoader: LuaModuleLoader?

    var hostFunctions: [(inout LuaArguments) -> LuaHostResult] = []
    var idleThreads: [(ref: Int32, thread: OpaquePointer)] = []
    /// The metatable that marks a table as a JSON array (so `[]` stays `[]`).
    var arrayMetatable: LuaRef = LuaRef(raw: LUA_NOREF)
    var makeEnvironmentFunction: LuaRef = LuaRef(raw: LUA_NOREF)
    var warningBuffer = ""
    /// The coroutine of the running handler call, in which a host function may wait; nil when
    /// the running call may not wait.
    @exclusivity(unchecked) var waitingCoroutine: OpaquePointer?
    /// What host functions see as `LuaArguments.context`. The caller sets it before
    /// `callHandler`; a resumed call gets back the context it had when it began waiting.
    @exclusivity(unchecked) public var callContext: (any Sendable)?
    /// Set by a host function that returned `.suspend`, taken by `resume`.
    @exclusivity(unchecked) var pendingSuspension: LuaSuspension?

    /// Creates a state with the standard libraries and the sandbox prelude, all opened in
    /// protected mode.
    ///
    /// `modules` become globals of every sandboxed chunk (each chunk gets a copy of each table).
    public init(limits: LuaLimits = .default, logger: Logger, moduleLoader: LuaModuleLoader? = nil,
                modules: [LuaModule] = []) throws(LuaError) {
        self.limits = limits
        wallClockNanoseconds = limits.wallClockNanoseconds
        self.logger = logger
        self.moduleLoader = moduleLoader
        runtime = .allocate(capacity: 1)
        runtime.initialize(to: mb_runtime(
            used: 0, limit: 0, cap_lifted: 1, step: 1000,
            instructions: 0, instruction_limit: 0, deadline_ns: 0, exceeded: Int32(MB_WITHIN_BUDGET),
            resume_count: 0, resume_raise: 0))
        guard let state = mb_newstate(runtime) else {
            runtime.deallocate()
            throw LuaError(kind: .memory, message: "cannot create a Lua state: not enough memory")
        }
        L = state
        mb_extraspace(L).pointee = Unmanaged.passUnretained(self).toOpaque()
        lua_setwarnf(L, luaWarning, Unmanaged.passUnretained(self).toOpaque())
        if mb_openlibs(L) != LUA_OK {
            let message = popString(L) ?? "cannot open the standard libraries"
            lua_close(L)
            runtime.deallocate()
            throw LuaError(kind: .runtime, message: message)
        }
        do {
            try installSandbox(modules: modules)
        } catch {
            lua_close(L)
            runtime.deallocate()
            throw error
        }
        // Events are short-lived garbage next to long-lived sandboxes: the generational collector
        // does not re-traverse the old objects each cycle.
        mb_gc_generational(L)
        // The cap applies from here on, but only while Lua code runs (host pushes lift it).
        runtime.pointee.limit = limits.memoryBytes > 0 ? Int(limits.memoryBytes) : 0
    }

    deinit {
        lua_close(L)
        runtime.deallocate()
    }

    /// Bytes the state holds now (live objects and garbage not yet collected). Unlike the rest of
    /// the state, this may be read from any thread, even while the state runs.
    public var memoryInUse: Int { Int(mb_memory_in_use(runtime)) }

    // MARK: Registry references

    /// Pops the value on top of the stack into the registry.
    func popRef() -> LuaRef { LuaRef(raw: mb_ref(L)) }

    /// Keeps the value at `index` in the registry (the stack is unchanged).
    public func reference(at index: Int32) -> LuaRef {
        lua_pushvalue(L, index)
        return popRef()
    }

    /// Releases a reference; the value may then be collected.
    public func release(_ ref: LuaRef) { mb_unref(L, ref.raw) }

    // MARK: The stack (host side)

    /// The host's working stack: values pushed by the host live here until it pops them.
    public var top: Int32 { lua_gettop(L) }

    /// Drops everything above `index` from the host's stack.
    public func setTop(_ index: Int32) { lua_settop(L, index) }

    /// Pushes a referenced value; returns its stack index.
    @discardableResult
    public func push(_ ref: LuaRef) -> Int32 {
        mb_getref(L, ref.raw)
        return lua_gettop(L)
    }

    /// Pushes a JSON value as Lua (objects → tables, arrays → sequences marked as arrays,
    /// null → `json.null`); returns its stack index.
    @discardableResult
    public func push(_ value: JSONValue) -> Int32 {
        pushJSON(L, value)
        return lua_gettop(L)
    }

    /// Pushes a JSON object as a table; returns its stack index.
    @discardableResult
    public func push(_ object: JSONObject) -> Int32 {
        pushJSONObject(L, object)
        return lua_gettop(L)
    }

    /// Pushes a string.
    public func push(_ string: String) {
        pushString(L, string)
    }

    /// Pushes an interned string (no hashing: it is fetched from the registry's array part).
    public func push(_ string: LuaString) {
        mb_getref(L, string.ref.raw)
    }

    /// Keeps `string` in the registry, for keys pushed on every event.
    public func intern(_ string: String) -> LuaString {
        pushString(L, string)
        return LuaString(ref: popRef())
    }

    /// Pops a key and a value (pushed in that order) into the table at `table`, without metamethods.
    public func rawSet(_ table: Int32) {
        lua_rawset(L, table)
    }

    /// Pushes a new empty table sized for `fields` named fields; returns its stack index.
    @discardableResult
    public func pushTable(fields: Int32) -> Int32 {
        lua_createtable(L, 0, fields)
        return lua_gettop(L)
    }

    /// Sets `table[key] = value` for the table at `table` (an absolute index).
    public func setField(_ key: String, _ value: JSONValue, in table: Int32) {
        pushJSON(L, value)
        setField(key, in: table)
    }

    /// Sets `table[key]` to a copy of the value at `valueIndex`.
    public func setField(_ key: String, copyOf valueIndex: Int32, in table: Int32) {
        lua_pushvalue(L, valueIndex)
        setField(key, in: table)
    }

    /// Pops the top value into `table[key]`.
    private func setField(_ key: String, in table: Int32) {
        pushString(L, key)
        lua_rotate(L, -2, 1)
        lua_rawset(L, table)
    }

    /// Pushes `table[key]` (raw) for the table at `table`; returns the new top index.
    @discardableResult
    public func pushField(_ key: String, of table: Int32) -> Int32 {
        pushString(L, key)
        lua_rawget(L, table)
        return lua_gettop(L)
    }

    /// Whether the value at `index` is a table.
    public func isTable(at index: Int32) -> Bool { lua_type(L, index) == LUA_TTABLE }

    /// Converts the value at `index` to JSON. Object keys follow `orderHint`'s order where they
    /// appear in it, then the others sorted, so a round trip keeps the field order.
    public func json(at index: Int32, orderHint: JSONValue? = nil) throws(LuaConversionError) -> JSONValue {
        try readJSON(L, index, orderHint: orderHint)
    }

    /// Runs a full garbage collection (tests and memory accounting).
    public func collectGarbage() {
        mb_gc_collect(L)
    }
}

// MARK: - Small stack helpers shared by the state's extensions

func pushString(_ L: OpaquePointer, _ s: String) {
    var s = s
    s.withUTF8 { _ = lua_pushlstring(L, $0.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, $0.count) }
}

/// The string at `index` if it is one (numbers are not converted: that would change the stack).
func stringValue(_ L: OpaquePointer, _ index: Int32) -> String? {
    guard lua_type(L, index) == LUA_TSTRING else { return nil }
    var length = 0
    guard let bytes = mb_tolstring(L, index, &length) else { return nil }
    return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
}

func popString(_ L: OpaquePointer) -> String? {
    let s = stringValue(L, -1)
    mb_pop(L, 1)
    return s
}

/// Routes `warn()` and errors in `__gc` finalizers to the log (they are lost without it).
private let luaWarning: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int32) -> Void = { ud, message, toContinue in
    guard let ud, let message else { return }
    let state = Unmanaged<LuaState>.fromOpaque(ud).takeUnretainedValue()
    let piece = String(cString: message)
    if toContinue == 0 && state.warningBuffer.isEmpty && piece.hasPrefix("@") { return } // control message
    state.warningBuffer += piece
    if toContinue == 0 {
        state.logger.warning("lua warning: \(state.warningBuffer)")
        state.warningBuffer = ""
    }
}
