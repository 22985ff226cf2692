import CLua

/// A global function a chunk defined in its environment.
public struct LuaGlobalFunction: Sendable, Equatable {
    public var name: String
    /// The line of its definition.
    public var line: Int
    /// Identity of the function value, to match it against a reference (`identity(of:)`).
    public var identity: UInt
}

extension LuaState {
    /// The Lua functions bound to global names in `environment` that were defined in the chunk
    /// `chunkName` (library functions and functions from other chunks are left out), by line.
    public func globalFunctions(in environment: LuaRef, definedIn chunkName: String) -> [LuaGlobalFunction] {
        let table = push(environment)
        defer { lua_settop(L, table - 1) }
        var found: [LuaGlobalFunction] = []
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            defer { mb_pop(L, 1) }
            guard lua_type(L, -1) == LUA_TFUNCTION, let name = stringValue(L, -2) else { continue }
            var ar = lua_Debug()
            lua_pushvalue(L, -1)
            guard lua_getinfo(L, ">S", &ar) != 0, let source = ar.source, String(cString: source) == chunkName else { continue }
            found.append(LuaGlobalFunction(name: name, line: Int(ar.linedefined), identity: UInt(bitPattern: lua_topointer(L, -1))))
        }
        return found.sorted { ($0.line, $0.name) < ($1.line, $1.name) }
    }

    /// The identity of a referenced value (its address), to compare values without Lua.
    public func identity(of ref: LuaRef) -> UInt {
        push(ref)
        defer { mb_pop(L, 1) }
        return UInt(bitPattern: lua_topointer(L, -1))
    }
}

/// A global of a sandboxed environment, as an editor or a linter must know it.
public struct LuaGlobal: Sendable, Equatable {
    public var name: String
    /// The names a table global holds (sorted); nil for any other value.
    public var fields: [String]?
}

extension LuaState {
    /// Every global a chunk sees in `environment`, by name: what the sandbox (and the host's
    /// extras and modules) put there, read back from the environment itself.
    public func globals(in environment: LuaRef) -> [LuaGlobal] {
        let table = push(environment)
        defer { lua_settop(L, table - 1) }
        var found: [LuaGlobal] = []
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            defer { mb_pop(L, 1) }
            guard lua_type(L, -2) == LUA_TSTRING, let name = stringValue(L, -2) else { continue }
            var fields: [String]?
            if lua_type(L, -1) == LUA_TTABLE, name != "_G" {
                var names: [String] = []
                let inner = lua_gettop(L)
                lua_pushnil(L)
                while lua_next(L, inner) != 0 {
                    if lua_type(L, -2) == LUA_TSTRING, let field = stringValue(L, -2) { names.append(field) }
                    mb_pop(L, 1)
                }
                fields = names.sorted()
            }
            found.append(LuaGlobal(name: name, fields: fields))
        }
        return found.sorted { $0.name < $1.name }
    }
}
