import CLua
import MoonbaseJSON

// JSON ↔ Lua, as SPEC section 4 says: objects ↔ tables, arrays ↔ sequences (marked with the
// array metatable so an empty array stays `[]`), null ↔ `json.null` (a NULL light userdata),
// integers stay integers, other numbers are floats.

/// Deeper nesting than this is refused, as the JSON parser refuses it.
let maximumNestingDepth = 512

extension LuaState {
    /// The state that owns `L` (any coroutine of it).
    static func owner(of L: OpaquePointer) -> LuaState {
        Unmanaged<LuaState>.fromOpaque(mb_extraspace(L).pointee!).takeUnretainedValue()
    }
}

func pushJSON(_ L: OpaquePointer, _ value: JSONValue) {
    switch value {
    case .null: lua_pushlightuserdata(L, nil)
    case .bool(let b): lua_pushboolean(L, b ? 1 : 0)
    case .int(let i): lua_pushinteger(L, lua_Integer(i))
    case .double(let d): lua_pushnumber(L, d)
    case .string(let s): pushString(L, s)
    case .array(let items):
        lua_checkstack(L, 4)
        lua_createtable(L, Int32(clamping: items.count), 0)
        for (offset, item) in items.enumerated() {
            pushJSON(L, item)
            lua_rawseti(L, -2, lua_Integer(offset + 1))
        }
        mb_getref(L, LuaState.owner(of: L).arrayMetatable.raw)
        lua_setmetatable(L, -2)
    case .object(let object): pushJSONObject(L, object)
    }
}

func pushJSONObject(_ L: OpaquePointer, _ object: JSONObject) {
    lua_checkstack(L, 4)
    lua_createtable(L, 0, Int32(clamping: object.count))
    for (key, value) in object {
        pushString(L, key)
        pushJSON(L, value)
        lua_rawset(L, -3)
    }
}

/// The value at `index` as JSON. Object keys follow `orderHint`'s order where they appear in it;
/// other keys come after them, sorted.
func readJSON(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?) throws(LuaConversionError) -> JSONValue {
    let memoryBytes = LuaState.owner(of: L).limits.memoryBytes
    var read = JSONRead(limit: memoryBytes > 0 ? memoryBytes / 16 : .max)
    do {
        return try readJSON(L, index, orderHint: orderHint, read: &read)
    } catch {
        throw LuaConversionError(error.description)
    }
}

/// Why a value cannot be converted, and where. The path is gathered only on the way out of a
/// failure: naming every member on the way in cost more than reading it.
private struct ReadFailure: Error {
    enum Step {
        case key(String)
        case position(Int)
    }

    let problem: String
    /// From the failing value up to the root.
    var path: [Step] = []

    init(_ problem: String) { self.problem = problem }

    /// `problem (at a.b[2].c)`, or just the problem at the root.
    var description: String {
        guard !path.isEmpty else { return problem }
        var text = ""
        for step in path.reversed() {
            switch step {
            case .key(let key): text += text.isEmpty ? key : "." + key
            case .position(let position): text += "[\(position)]"
            }
        }
        return problem + " (at " + text + ")"
    }
}

/// A conversion under way: the tables on the path from the root, to refuse cycles with a clear
/// error, and how many values it may still read. A table is read once per path to it, so a few
/// kilobytes of tables that share each other (`t = {t, t}`, sixty times over) would stand for
/// 2^60 values, read in Swift with no memory cap and no budget; a conversion reads at most as
/// many values as the state's memory cap could hold without sharing (16 bytes each).
private struct JSONRead {
    var path: [UnsafeRawPointer] = []
    let limit: Int
    var valuesLeft: Int

    init(limit: Int) {
        self.limit = limit
        valuesLeft = limit
    }
}

private func readJSON(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?,
                      read: inout JSONRead) throws(ReadFailure) -> JSONValue {
    read.valuesLeft -= 1
    guard read.valuesLeft >= 0 else {
        throw ReadFailure("cannot convert to JSON: more than \(read.limit) values (tables shared many times over?)")
    }
    switch lua_type(L, index) {
    case LUA_TNIL, LUA_TNONE:
        return .null
    case LUA_TBOOLEAN:
        return .bool(lua_toboolean(L, index) != 0)
    case LUA_TNUMBER:
        if lua_isinteger(L, index) != 0 { return .int(Int64(mb_tointeger(L, index))) }
        let d = mb_tonumber(L, index)
        guard d.isFinite else { throw ReadFailure("cannot convert \(d) to JSON") }
        return .double(d)
    case LUA_TSTRING:
        return .string(stringValue(L, index)!)
    case LUA_TLIGHTUSERDATA where lua_touserdata(L, index) == nil:
        return .null
    case LUA_TTABLE:
        let table = lua_topointer(L, index)!
        guard !read.path.contains(table) else {
            throw ReadFailure("cannot convert a table that contains itself to JSON")
        }
        guard read.path.count < maximumNestingDepth else {
            throw ReadFailure("cannot convert to JSON: nesting deeper than \(maximumNestingDepth) levels")
        }
        read.path.append(table)
        defer { read.path.removeLast() }
        return try readTable(L, lua_absindex(L, index), orderHint: orderHint, read: &read)
    default:
        let typeName = String(cString: lua_typename(L, lua_type(L, index)))
        throw ReadFailure("cannot convert a \(typeName) value to JSON")
    }
}

/// Reads the value on top of the stack, pops it, and names `step` in the path of a failure.
private func readAndPop(_ L: OpaquePointer, at step: ReadFailure.Step, orderHint: JSONValue?,
                        read: inout JSONRead) throws(ReadFailure) -> JSONValue {
    defer { mb_pop(L, 1) }
    do {
        return try readJSON(L, -1, orderHint: orderHint, read: &read)
    } catch {
        var failure = error
        failure.path.append(step)
        throw failure
    }
}

private func isMarkedArray(_ L: OpaquePointer, _ index: Int32) -> Bool {
    guard lua_getmetatable(L, index) != 0 else { return false }
    mb_getref(L, LuaState.owner(of: L).arrayMetatable.raw)
    let marked = lua_rawequal(L, -1, -2) != 0
    mb_pop(L, 2)
    return marked
}

private func readTable(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?,
                       read: inout JSONRead) throws(ReadFailure) -> JSONValue {
    lua_checkstack(L, 4)
    if isMarkedArray(L, index) {
        return try readSequence(L, index, count: Int(lua_rawlen(L, index)), orderHint: orderHint, read: &read)
    }
    // Classify keys: all strings → object; exactly 1...n → array; empty → object.
    var stringKeys = 0
    var integerKeys = 0
    var maxInteger: lua_Integer = 0
    lua_pushnil(L)
    while lua_next(L, index) != 0 {
        switch lua_type(L, -2) {
        case LUA_TSTRING:
            stringKeys += 1
        case LUA_TNUMBER where lua_isinteger(L, -2) != 0 && mb_tointeger(L, -2) > 0:
            integerKeys += 1
            maxInteger = max(maxInteger, mb_tointeger(L, -2))
        default:
            let typeName = String(cString: lua_typename(L, lua_type(L, -2)))
            mb_pop(L, 2)
            throw ReadFailure("cannot convert a table with a \(typeName) key to JSON")
        }
        mb_pop(L, 1)
    }
    if integerKeys > 0 {
        guard stringKeys == 0 else {
            throw ReadFailure("cannot convert a table with both string and integer keys to JSON")
        }
        guard maxInteger == integerKeys else {
            throw ReadFailure("cannot convert a sparse array to JSON")
        }
        return try readSequence(L, index, count: integerKeys, orderHint: orderHint, read: &read)
    }
    return try .object(readObject(L, index, count: stringKeys, orderHint: orderHint, read: &read))
}

private func readSequence(_ L: OpaquePointer, _ index: Int32, count: Int, orderHint: JSONValue?,
                          read: inout JSONRead) throws(ReadFailure) -> JSONValue {
    var hints: [JSONValue] = []
    if case .array(let items)? = orderHint { hints = items }
    var items: [JSONValue] = []
    items.reserveCapacity(count)
    for position in 0..<count {
        lua_rawgeti(L, index, lua_Integer(position + 1))
        let hint = position < hints.count ? hints[position] : nil
        items.append(try readAndPop(L, at: .position(position + 1), orderHint: hint, read: &read))
    }
    return .array(items)
}

/// An object of `count` string keys. The hint's keys are looked up in its order (usually the
/// fields a hook was given, so nothing else is left); the table is walked only for other keys.
private func readObject(_ L: OpaquePointer, _ index: Int32, count: Int, orderHint: JSONValue?,
                        read: inout JSONRead) throws(ReadFailure) -> JSONObject {
    var object = JSONObject(minimumCapacity: count)
    guard case .object(let hint)? = orderHint else { return try appendOthers(L, index, to: &object, read: &read) }
    for (key, childHint) in hint {
        pushString(L, key)
        if lua_rawget(L, index) == LUA_TNIL {
            mb_pop(L, 1)
            continue
        }
        object.append(uniqueKey: key, try readAndPop(L, at: .key(key), orderHint: childHint, read: &read))
    }
    return object.count == count ? object : try appendOthers(L, index, to: &object, except: hint, read: &read)
}

/// Appends the members whose keys are not in `except`, sorted by key.
private func appendOthers(_ L: OpaquePointer, _ index: Int32, to object: inout JSONObject, except: JSONObject = JSONObject(),
                          read: inout JSONRead) throws(ReadFailure) -> JSONObject {
    var others: [(key: String, value: JSONValue)] = []
    lua_pushnil(L)
    while lua_next(L, index) != 0 {
        let key = stringValue(L, -2)!
        if except[key] != nil {
            mb_pop(L, 1)
            continue
        }
        do {
            others.append((key, try readAndPop(L, at: .key(key), orderHint: nil, read: &read)))
        } catch {
            mb_pop(L, 1)
            throw error
        }
    }
    others.sort { $0.key < $1.key }
    for (key, value) in others { object.append(uniqueKey: key, value) }
    return object
}
