import CLua
import MoonbaseJSON

/// What a host function hands back to Lua.
public enum LuaHostResult {
    /// This many values were pushed with `LuaArguments.push` and are returned.
    case results(Int32)
    /// Raise this message as a Lua error, prefixed with the caller's `file:line:`.
    case error(String)
    /// Raise this value (a table, for structured errors) as the Lua error object.
    case raise(JSONValue)
    /// Wait for this operation without blocking the thread; its outcome is the call's result.
    /// Only a handler call (`LuaState.callHandler`) can wait, and only in its own coroutine.
    case suspend(LuaSuspension)
}

/// A host function that may be shared by several states (each runs it on its own thread).
public typealias LuaHostFunction = @Sendable (inout LuaArguments) -> LuaHostResult

/// A table of host functions that every sandboxed chunk sees as a global, such as `http`.
public struct LuaModule: Sendable {
    public var name: String
    public var functions: [(name: String, body: LuaHostFunction)]

    public init(name: String, functions: [(name: String, body: LuaHostFunction)]) {
        self.name = name
        self.functions = functions
    }
}

/// The arguments of a host function call, and the place its results are pushed.
public struct LuaArguments {
    let L: OpaquePointer

    /// The number of arguments.
    public var count: Int32 { lua_gettop(L) }

    /// Whether argument `index` (1-based) is nil or absent.
    public func isNil(_ index: Int32) -> Bool { lua_type(L, index) <= LUA_TNIL }

    /// Whether argument `index` is a function.
    public func isFunction(_ index: Int32) -> Bool { lua_type(L, index) == LUA_TFUNCTION }

    /// Whether argument `index` is a table.
    public func isTable(_ index: Int32) -> Bool { lua_type(L, index) == LUA_TTABLE }

    /// Lua's name for the type of argument `index` ("no value" when absent).
    public func typeName(_ index: Int32) -> String { String(cString: lua_typename(L, lua_type(L, index))) }

    /// Argument `index` if it is a string.
    public func string(_ index: Int32) -> String? { stringValue(L, index) }

    /// Argument `index` if it is a string, as its bytes (Lua strings may hold any bytes).
    public func bytes(_ index: Int32) -> [UInt8]? {
        guard lua_type(L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = mb_tolstring(L, index, &length) else { return nil }
        return Array(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    /// Argument `index` if it is an integer (or a float with an exact integer value).
    public func integer(_ index: Int32) -> Int64? {
        guard lua_type(L, index) == LUA_TNUMBER else { return nil }
        var isNumber: Int32 = 0
        let value = lua_tointegerx(L, index, &isNumber)
        return isNumber != 0 ? Int64(value) : nil
    }

    /// Argument `index` converted to JSON.
    public func json(_ index: Int32) throws(LuaConversionError) -> JSONValue {
        try readJSON(L, index, orderHint: nil)
    }

    /// A registry reference to argument `index` (e.g. a handler function); release it when done.
    public func reference(_ index: Int32) -> LuaRef {
        lua_pushvalue(L, index)
        return LuaRef(raw: mb_ref(L))
    }

    /// The line where the function at argument `index` is defined, if it is a Lua function.
    public func definitionLine(_ index: Int32) -> Int? {
        let line = mb_function_line(L, index)
        return line > 0 ? Int(line) : nil
    }

    /// The line the calling Lua code is at.
    public var callerLine: Int {
        var ar = lua_Debug()
        guard lua_getstack(L, 1, &ar) != 0, lua_getinfo(L, "l", &ar) != 0 else { return 0 }
        return Int(ar.currentline)
    }

    /// Pushes a result.
    public func push(_ value: JSONValue) { pushJSON(L, value) }

    /// Pushes a string result.
    public func push(_ value: String) { pushString(L, value) }

    /// Pushes a string made of any bytes.
    public func push(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { _ = lua_pushlstring(L, UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count) }
    }

    /// Pushes nil.
    public func pushNil() { lua_pushnil(L) }

    /// The error for argument `index` of the wrong kind, worded as Lua's own:
    /// `function: bad argument #index (expected expected, got type)`.
    public func badArgument(_ index: Int32, to function: String, expected: String) -> LuaHostResult {
        .error("\(function): bad argument #\(index) (\(expected) expected, got \(typeName(index)))")
    }

    /// The context the running handler call was started with (see `LuaState.callHandler`).
    public var context: (any Sendable)? { LuaState.owner(of: L).callContext }
}

extension LuaState {
    /// Wraps a Swift closure as a Lua function and returns a reference to it. The closure
    /// never raises: it returns `.error`, and the C trampoline raises once it has returned.
    public func makeFunction(_ body: @escaping (inout LuaArguments) -> LuaHostResult) -> LuaRef {
        hostFunctions.append(body)
        mb_push_host_function(L, luaHostEntry, lua_Integer(hostFunctions.count - 1))
        return popRef()
    }
}

/// The single C entry point of every host function; the id upvalue selects the closure.
private let luaHostEntry: @convention(c) (OpaquePointer?) -> Int32 = { L in
    guard let L else { return 0 }
    let state = LuaState.owner(of: L)
    let id = Int(mb_host_function_id(L))
    var arguments = LuaArguments(L: L)
    switch state.hostFunctions[id](&arguments) {
    case .results(let count):
        return count
    case .error(let message):
        luaL_where(L, 1)
        pushString(L, message)
        lua_concat(L, 2)
        return Int32(MB_HOST_ERROR)
    case .raise(let value):
        pushJSON(L, value)
        return Int32(MB_HOST_ERROR)
    case .suspend(let suspension):
        guard state.waitingCoroutine == L, lua_isyieldable(L) != 0 else {
            luaL_where(L, 1)
            pushString(L, "this call waits for the host, which only a hook's handler can do "
                + "(not while its file loads, nor inside a coroutine of its own or a metamethod)")
            lua_concat(L, 2)
            return Int32(MB_HOST_ERROR)
        }
        state.pendingSuspension = suspension
        return Int32(MB_HOST_SUSPEND)
    }
}
