import CLua
import Logging
import LuaBounded
import MoonbaseJSON

// The sandbox of SPEC section 7, in the manner of Redis' scripting: every chunk gets an
// environment table of its own holding copies of the safe parts of the standard library, so
// its globals never collide with another chunk's and no chunk can tamper with a library table
// another one uses. The prelude runs once per state, in protected mode, with the full library.
//
// Time no budget sees. The count hook charges VM instructions, and fires only between them: a C
// function runs to its end unobserved. So every C function a script can reach must take time
// that something bounds. The audit, function by function:
//
// - Counted (Sources/LuaBounded, in place of Lua's own): string.find, match, gmatch and gsub
//   (a backtracking pattern takes hours in Lua's matcher; plain `find` uses glibc's linear
//   memmem instead of Lua's quadratic search); string.rep (Lua's copies an empty string 2^50
//   times if asked); table.concat, insert, remove, move and sort (they loop over a range that
//   `__len` or the arguments set, through `__index`/`__newindex` that may be C functions such
//   as `rawequal`, so neither memory nor Lua code grows: `table.move({}, 1, 2^50, 2)`).
// - Bounded by the Lua stack (a million slots; past it "too many results" or "string slice too
//   long"): table.unpack, string.byte, string.char, utf8.char, utf8.codepoint, select, and
//   every function's variable arguments.
// - Linear in an input the memory cap bounds (a string or table the state holds): string.len,
//   sub, upper, lower, reverse, format (each item is linear, widths have two digits, `%s`
//   calls `__tostring`, which is Lua code or one more bounded C call), pack, unpack, packsize
//   (sizes beyond the cap fail to allocate), utf8.len, utf8.offset, utf8.codes (per step),
//   tostring, tonumber, next/pairs (one `next` may skip the empty slots of a table), `..`,
//   load (compiling is linear in the text; a reader function is Lua code, or a C function whose
//   pieces the compiled chunk must hold), collectgarbage("collect"/"step") (linear in the
//   heap, which the cap bounds), debug.traceback (it prints a bounded number of levels),
//   os.date (linear in the format), os.time, os.clock, os.getenv, math.*, coroutine.* (the
//   code they run is Lua, counted).
// - Host modules (Swift, running with the cap lifted): json.encode reads a table at most once
//   per path, to depth 512 and to as many values as the cap could hold (see `readJSON`);
//   json.decode is linear in its text (an iterative parser, depth 512); crypto.* are linear in
//   their input; print, log.* and warn are linear in the message; http.request waits off the
//   thread and gives up when `timeout_ms` or the call's wall-clock budget runs out, whichever
//   comes first, with responses capped at 4 MiB.
//
// What no per-function bound covers: the count hook checks the clock every 1,000 (`mb_runtime.step`)
// instructions, and a few hundred calls of a linear function on a string of tens of megabytes
// fit between two checks. The hook pool's watchdog takes a worker back at twice the wall-clock
// budget whatever its state is doing.
private let prelude = #"""
local host = ...
-- Lua's pattern matcher, string.rep and the table functions that loop over a range run in C,
-- where no count hook fires: they are replaced by versions that count their steps against the
-- budgets (Sources/LuaBounded). Replaced in the library tables themselves, so that method calls
-- on strings (through the string metatable's __index, which is `string`) use them too.
for library, functions in pairs(host.bounded()) do
  for name, f in pairs(functions) do _G[library][name] = f end
end
local G, ipairs, pairs, type, tostring, select, error, rawget = _G, ipairs, pairs, type, tostring, select, error, rawget
local raw_load, raw_setmetatable, raw_collectgarbage = load, setmetatable, collectgarbage
local getinfo, concat = debug.getinfo, table.concat
local host_log, module_source, host_modules = host.log, host.module_source, host.modules

local function copy(library, except)
  local c = {}
  for k, v in pairs(library) do if not (except and except[k]) then c[k] = v end end
  return c
end

local base_names = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
  "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall", "getmetatable", "warn", "_VERSION" }

-- Finalizers would run Lua code at arbitrary moments, outside any budget.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available in hooks", 2)
  end
  return raw_setmetatable(t, mt)
end

local gc_options = { count = true, collect = true, step = true, isrunning = true }
local function safe_collectgarbage(option, ...)
  if option ~= nil and not gc_options[option] then
    error("collectgarbage('" .. tostring(option) .. "') is not available in hooks", 2)
  end
  return raw_collectgarbage(option, ...)
end

local array_mt = { __name = "json.array", __metatable = "json.array" }

local libraries = {
  string = copy(string, { dump = true }),
  table = copy(table), math = copy(math), utf8 = copy(utf8), coroutine = copy(coroutine),
}
local os_subset = { time = os.time, clock = os.clock, date = os.date, getenv = os.getenv }
local debug_subset = { traceback = debug.traceback }
-- Chunks get copies; the string metatable keeps pointing at the original, hidden from scripts.
getmetatable("").__metatable = false
string.dump = nil

local loaded = {}      -- require's cache: once per state
local LOADING = {}
local make_env

local function file_of(chunkname) return (chunkname:gsub("^@", "")) end

local function require_module(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
  end
  local cached = loaded[name]
  if cached == LOADING then error("module '" .. name .. "' is required while it loads (a require cycle)", 2) end
  if cached ~= nil then return cached end
  local source, chunkname = module_source(name)
  if not source then error(chunkname, 2) end
  local fn, err = raw_load(source, chunkname, "t", make_env(chunkname))
  if not fn then error(err, 0) end
  loaded[name] = LOADING
  local ok, result = pcall(fn, name)
  if not ok then loaded[name] = nil; error(result, 0) end
  if result == nil then result = true end
  loaded[name] = result
  return result
end

make_env = function(chunkname, extras)
  local env = {}
  for _, n in ipairs(base_names) do env[n] = G[n] end
  env.setmetatable = safe_setmetatable
  env.collectgarbage = safe_collectgarbage
  for name, library in pairs(libraries) do env[name] = copy(library) end
  env.os = copy(os_subset)
  env.debug = copy(debug_subset)
  for name, module in pairs(host_modules) do env[name] = copy(module) end
  local file = file_of(chunkname)
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local info = getinfo(2, "l")
    host_log("info", file, info and info.currentline or 0, concat(parts, "\t"), nil)
  end
  env.load = function(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then error("load: only text chunks are allowed in hooks", 2) end
    return raw_load(chunk, name, "t", chunk_env or env)
  end
  env.require = require_module
  if extras then for k, v in pairs(extras) do env[k] = v end end
  env._G = env
  return env
end

return make_env, array_mt
"""#

extension LuaState {
    func installSandbox(modules: [LuaModule]) throws(LuaError) {
        let hostTable = pushTable(fields: 5)
        // `print`: the message is made in Lua (`tostring` may run `__tostring`), logged here.
        setFunction("log", in: hostTable) { [unowned self] arguments in
            self.log(.info, arguments.string(4) ?? "", file: arguments.string(2) ?? "?",
                     line: Int(arguments.integer(3) ?? 0), fields: nil)
            return .results(0)
        }
        setFunction("module_source", in: hostTable) { [unowned self] arguments in
            guard let name = arguments.string(1), let loader = self.moduleLoader else {
                arguments.pushNil()
                arguments.push("module '\(arguments.string(1) ?? "?")' not found")
                return .results(2)
            }
            switch loader(name) {
            case .success(let module):
                arguments.push(String(decoding: module.source, as: UTF8.self))
                arguments.push(module.chunkName)
            case .failure(let error):
                arguments.pushNil()
                arguments.push(error.message)
            }
            return .results(2)
        }
        lua_pushcclosure(L, mb_open_bounded, 0)
        setField("bounded", copyOf: -1, in: hostTable)
        mb_pop(L, 1)
        let modulesTable = pushTable(fields: Int32(modules.count))
        for module in modules {
            let table = pushTable(fields: Int32(module.functions.count))
            for function in module.functions { setFunction(function.name, in: table, function.body) }
            for constant in module.constants { setField(constant.name, constant.value, in: table) }
            setField(module.name, copyOf: table, in: modulesTable)
            mb_pop(L, 1)
        }
        setField("modules", copyOf: modulesTable, in: hostTable)
        mb_pop(L, 1)

        let status = prelude.withCString { luaL_loadstring(L, $0) }
        guard status == LUA_OK else {
            throw LuaError(kind: .syntax, message: popString(L) ?? "sandbox prelude does not compile")
        }
        mb_insert(L, hostTable)
        guard mb_pcall_traceback(L, 1, 2) == LUA_OK else {
            throw LuaError(kind: .runtime, message: popString(L) ?? "sandbox prelude failed")
        }
        arrayMetatable = popRef()
        makeEnvironmentFunction = popRef()
    }

    private func setFunction(_ name: String, in table: Int32, _ body: @escaping (inout LuaArguments) -> LuaHostResult) {
        let ref = makeFunction(body)
        push(ref)
        release(ref)
        setField(name, copyOf: -1, in: table)
        mb_pop(L, 1)
    }

    /// A fresh sandboxed environment for the chunk `chunkName`, with `extras` (a table of
    /// additional globals, such as a host's registration functions) copied into it.
    public func makeEnvironment(chunkName: String, extras: LuaRef? = nil) -> Result<LuaRef, LuaError> {
        push(makeEnvironmentFunction)
        pushString(L, chunkName)
        if let extras { push(extras) } else { lua_pushnil(L) }
        guard mb_pcall_traceback(L, 2, 1) == LUA_OK else {
            return .failure(LuaError(kind: .runtime, message: popString(L) ?? "cannot make an environment"))
        }
        return .success(popRef())
    }

    /// Makes a table of host functions, to pass as `extras` to `makeEnvironment`.
    public func makeTable(functions: [(name: String, body: (inout LuaArguments) -> LuaHostResult)]) -> LuaRef {
        let table = pushTable(fields: Int32(functions.count))
        for function in functions { setFunction(function.name, in: table, function.body) }
        return popRef()
    }

    /// Logs a script's message with its file and line, and its fields as metadata (strings as
    /// they are, other values as JSON).
    func log(_ level: Logger.Level, _ message: String, file: String, line: Int, fields: JSONValue?) {
        var metadata: Logger.Metadata = ["file": .string(file), "line": .stringConvertible(line)]
        if case .object(let fields)? = fields {
            for (key, value) in fields {
                if case .string(let s) = value { metadata[key] = .string(s) } else { metadata[key] = .string(value.serializedString()) }
            }
        }
        logger.log(level: level, "\(message)", metadata: metadata)
    }
}
