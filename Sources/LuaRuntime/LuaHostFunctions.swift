import CLua
import Logging
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

/// A table of host functions (and constants) that every sandboxed chunk sees as a global, such
/// as `json` or `http`. Each chunk gets a copy of the table, so no chunk can change another's.
public struct LuaModule: Sendable {
    public var name: String
    /// What the module is for, one sentence (for editors: `moonbase hooks types`).
    public var summary: String
    public var functions: [LuaFunction]
    /// Constants, such as `json.null`.
    public var constants: [(name: String, value: JSONValue, type: String)]
    /// The LuaLS classes the functions' signatures name (e.g. an HTTP response).
    public var classes: [LuaClass]

    public init(name: String, summary: String = "", functions: [LuaFunction],
                constants: [(name: String, value: JSONValue, type: String)] = [], classes: [LuaClass] = []) {
        self.name = name
        self.summary = summary
        self.functions = functions
        self.constants = constants
        self.classes = classes
    }
}

/// A host function with what an editor needs to know of it.
public struct LuaFunction: Sendable {
    public var name: String
    public var signature: LuaSignature
    public var body: LuaHostFunction

    /// - Parameters:
    ///   - parameters: LuaLS `---@param` texts, e.g. `"url string"`, `"options? HTTPOptions"`.
    ///   - returns: LuaLS `---@return` texts, e.g. `"HTTPResponse? response"`.
    public init(_ name: String, _ summary: String = "", parameters: [String] = [], returns: [String] = [],
                body: @escaping LuaHostFunction) {
        self.name = name
        self.signature = LuaSignature(summary: summary, parameters: parameters, returns: returns)
        self.body = body
    }
}

/// A function's documentation in LuaLS's annotation syntax: the one description of the API that
/// both the sandbox and the generated editor definitions use, so they cannot drift.
public struct LuaSignature: Sendable {
    public var summary: String
    /// `---@param` texts: a name (with `?` when optional) and a type.
    public var parameters: [String]
    /// `---@return` texts: a type and maybe a name.
    public var returns: [String]
    /// `---@overload` texts: other ways to call it, e.g. `fun(handler: fun(event: RecordEvent))`.
    public var overloads: [String]

    public init(summary: String, parameters: [String] = [], returns: [String] = [], overloads: [String] = []) {
        self.summary = summary
        self.parameters = parameters
        self.returns = returns
        self.overloads = overloads
    }
}

/// A LuaLS class: a table shape that signatures name (`---@class`, `---@field`).
public struct LuaClass: Sendable {
    public var name: String
    public var summary: String
    /// `---@field` texts: a name (with `?` when it may be absent), a type and a description.
    public var fields: [String]

    public init(_ name: String, _ summary: String, fields: [String]) {
        self.name = name
        self.summary = summary
        self.fields = fields
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

    /// The file (chunk name without its `@`) and line the calling Lua code is at.
    public var callerLocation: (file: String, line: Int) {
        var ar = lua_Debug()
        guard lua_getstack(L, 1, &ar) != 0, lua_getinfo(L, "Sl", &ar) != 0, let source = ar.source else { return ("?", 0) }
        let name = String(cString: source)
        return (name.hasPrefix("@") ? String(name.dropFirst()) : name, Int(ar.currentline))
    }

    /// Logs `message` through the state's logger, with the caller's file and line and `fields`
    /// (a table's string values as they are, others as JSON) as metadata.
    public func log(_ level: Logger.Level, _ message: String, fields index: Int32) {
        let (file, line) = callerLocation
        LuaState.owner(of: L).log(level, message, file: file, line: line, fields: isTable(index) ? try? json(index) : nil)
    }

    /// Marks the table at `index` as a JSON array, so that it is written as `[]` even when empty;
    /// with no table there, pushes a new empty array. Either way the array is the one result.
    public func markArray(_ index: Int32) -> LuaHostResult {
        if isNil(index) {
            push(.array([]))
            return .results(1)
        }
        guard isTable(index) else { return badArgument(index, to: "json.array", expected: "table") }
        if luaL_getmetafield(L, index, "__metatable") != LUA_TNIL {
            mb_pop(L, 1)
            return .error("json.array: cannot change a protected metatable")
        }
        lua_pushvalue(L, index)
        mb_getref(L, LuaState.owner(of: L).arrayMetatable.raw)
        lua_setmetatable(L, -2)
        return .results(1)
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
