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

/// The value at `index` as JSON. Object keys follow `orderHint`'s order where they appear in it.
func readJSON(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?) throws(LuaConversionError) -> JSONValue {
    var visiting: [UnsafeRawPointer] = []
    return try readJSON(L, index, orderHint: orderHint, visiting: &visiting, path: "")
}

/// `visiting` holds the tables on the path from the root, to refuse cycles with a clear error.
private func readJSON(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?, visiting: inout [UnsafeRawPointer],
                      path: String) throws(LuaConversionError) -> JSONValue {
    switch lua_type(L, index) {
    case LUA_TNIL, LUA_TNONE:
        return .null
    case LUA_TBOOLEAN:
        return .bool(lua_toboolean(L, index) != 0)
    case LUA_TNUMBER:
        if lua_isinteger(L, index) != 0 { return .int(Int64(mb_tointeger(L, index))) }
        let d = mb_tonumber(L, index)
        guard d.isFinite else { throw LuaConversionError("cannot convert \(d) to JSON\(describe(path))") }
        return .double(d)
    case LUA_TSTRING:
        return .string(stringValue(L, index)!)
    case LUA_TLIGHTUSERDATA where lua_touserdata(L, index) == nil:
        return .null
    case LUA_TTABLE:
        let table = lua_topointer(L, index)!
        guard !visiting.contains(table) else {
            throw LuaConversionError("cannot convert a table that contains itself to JSON\(describe(path))")
        }
        guard visiting.count < maximumNestingDepth else {
            throw LuaConversionError("cannot convert to JSON: nesting deeper than \(maximumNestingDepth) levels\(describe(path))")
        }
        visiting.append(table)
        defer { visiting.removeLast() }
        return try readTable(L, lua_absindex(L, index), orderHint: orderHint, visiting: &visiting, path: path)
    default:
        let typeName = String(cString: lua_typename(L, lua_type(L, index)))
        throw LuaConversionError("cannot convert a \(typeName) value to JSON\(describe(path))")
    }
}

private func describe(_ path: String) -> String {
    path.isEmpty ? "" : " (at \(path))"
}

private func isMarkedArray(_ L: OpaquePointer, _ index: Int32) -> Bool {
    guard lua_getmetatable(L, index) != 0 else { return false }
    mb_getref(L, LuaState.owner(of: L).arrayMetatable.raw)
    let marked = lua_rawequal(L, -1, -2) != 0
    mb_pop(L, 2)
    return marked
}

private func readTable(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?, visiting: inout [UnsafeRawPointer],
                       path: String) throws(LuaConversionError) -> JSONValue {
    lua_checkstack(L, 4)
    if isMarkedArray(L, index) {
        return try readSequence(L, index, count: Int(lua_rawlen(L, index)), orderHint: orderHint, visiting: &visiting, path: path)
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
            throw LuaConversionError("cannot convert a table with a \(typeName) key to JSON\(describe(path))")
        }
        mb_pop(L, 1)
    }
    if integerKeys > 0 {
        guard stringKeys == 0 else {
            throw LuaConversionError("cannot convert a table with both string and integer keys to JSON\(describe(path))")
        }
        guard maxInteger == integerKeys else {
            throw LuaConversionError("cannot convert a sparse array to JSON\(describe(path))")
        }
        return try readSequence(L, index, count: integerKeys, orderHint: orderHint, visiting: &visiting, path: path)
    }
    return try .object(readObject(L, index, orderHint: orderHint, visiting: &visiting, path: path))
}

private func readSequence(_ L: OpaquePointer, _ index: Int32, count: Int, orderHint: JSONValue?, visiting: inout [UnsafeRawPointer],
                          path: String) throws(LuaConversionError) -> JSONValue {
    var hints: [JSONValue] = []
    if case .array(let items)? = orderHint { hints = items }
    var items: [JSONValue] = []
    items.reserveCapacity(count)
    for position in 0..<count {
        lua_rawgeti(L, index, lua_Integer(position + 1))
        defer { mb_pop(L, 1) }
        let hint = position < hints.count ? hints[position] : nil
        items.append(try readJSON(L, -1, orderHint: hint, visiting: &visiting, path: "\(path)[\(position + 1)]"))
    }
    return .array(items)
}

private func readObject(_ L: OpaquePointer, _ index: Int32, orderHint: JSONValue?, visiting: inout [UnsafeRawPointer],
                        path: String) throws(LuaConversionError) -> JSONObject {
    var hint = JSONObject()
    if case .object(let object)? = orderHint { hint = object }
    var known: [(position: Int, key: String, value: JSONValue)] = []
    var extra: [(key: String, value: JSONValue)] = []
    var positions: [String: Int] = [:]
    if !hint.isEmpty {
        for (position, key) in hint.keys.enumerated() { positions[key] = position }
    }
    lua_pushnil(L)
    while lua_next(L, index) != 0 {
        let key = stringValue(L, -2)!
        let childHint = hint.isEmpty ? nil : hint[key]
        let value: JSONValue
        do {
            value = try readJSON(L, -1, orderHint: childHint, visiting: &visiting, path: path.isEmpty ? key : "\(path).\(key)")
        } catch {
            mb_pop(L, 2)
            throw error
        }
        mb_pop(L, 1)
        if let position = positions[key] { known.append((position, key, value)) } else { extra.append((key, value)) }
    }
    known.sort { $0.position < $1.position }
    extra.sort { $0.key < $1.key }
    return JSONObject(known.map { ($0.key, $0.value) } + extra.map { ($0.key, $0.value) })
}
