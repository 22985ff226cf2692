import CLua
import Foundation
import LuaBounded

/// string.find/match/gsub on ordinary patterns (the shipped examples' slugify and trim, a slug
/// and an email check, a plain word) with the bounded matcher (Sources/LuaBounded) against Lua's
/// own, in one state with a budget armed, so the bounded side pays for its checks. Rounds
/// alternate between the two and are timed in the thread's CPU time, so that other processes
/// on a busy machine weigh less; "speed" is Lua's time over the bounded one's (goal: ≥ 0.9).
enum PatternBenchmark {
    static let script = #"""
    local bounded = ...
    local lower = string.lower
    local libraries = { [false] = string, [true] = bounded.string }
    local text = "  Hello, Moonbase: A Records Backend with Drop-in Lua Hooks!  "
    local cases = {
      { "slugify (hooks/_utils.lua)", function(lib)
          return lib.gsub(lib.gsub(lib.gsub(lower(text), "[^%w]+", "-"), "^-+", ""), "-+$", "") end },
      { "trim (hooks/_utils.lua)", function(lib) return lib.gsub(lib.gsub(text, "^%s+", ""), "%s+$", "") end },
      { "slug check (find)", function(lib) return lib.find("hello-moonbase-2024", "^[a-z0-9]+[a-z0-9-]*$") end },
      { "email check (match)", function(lib) return lib.match("ada.lovelace@example.com", "^[%w._%%+-]+@[%w.-]+%.%a%a+$") end },
      { "key=value pairs (gmatch)", function(lib)
          local n = 0
          for k, v in lib.gmatch("title=Hello&slug=hello-moonbase&status=published", "([^&=]+)=([^&=]*)") do n = n + 1 end
          return n end },
      { "plain word (find)", function(lib) return lib.find(text, "Records") end },
    }
    local function run(case, use_bounded, iterations)
      local body, lib = cases[case][2], libraries[use_bounded]
      for _ = 1, iterations do body(lib) end
    end
    local names = {}
    for i, case in ipairs(cases) do names[i] = case[1] end
    return run, names
    """#

    static func run(iterations: Int, rounds: Int) throws {
        let runtime = UnsafeMutablePointer<mb_runtime>.allocate(capacity: 1)
        runtime.initialize(to: mb_runtime(used: 0, limit: 0, cap_lifted: 0, step: 1000, instructions: 0, instruction_limit: 0,
                                          deadline_ns: 0, exceeded: Int32(MB_WITHIN_BUDGET), resume_count: 0, resume_raise: 0))
        defer { runtime.deallocate() }
        guard let L = mb_newstate(runtime) else { fatalError("cannot make a Lua state") }
        defer { lua_close(L) }
        guard mb_openlibs(L) == LUA_OK, luaL_loadstring(L, script) == LUA_OK else { fatalError("the benchmark does not load") }
        lua_pushcclosure(L, mb_open_bounded, 0)
        guard mb_pcall_traceback(L, 0, 1) == LUA_OK, mb_pcall_traceback(L, 1, 2) == LUA_OK else { fatalError("the benchmark does not run") }
        let names = lua_gettop(L)
        let runner = names - 1
        // A budget no round comes near, checked as in a handler call.
        mb_arm_budget(L, 1 << 60, 3_600_000_000_000)

        print("string patterns: \(iterations) calls per round, \(rounds) rounds, median ns/call")
        print("case                          Lua ns  bounded ns  speed")
        for index in 1...Int(lua_rawlen(L, names)) {
            lua_rawgeti(L, names, lua_Integer(index))
            let name = String(cString: lua_tolstring(L, -1, nil))
            mb_pop(L, 1)
            var times: [Bool: [Double]] = [false: [], true: []]
            for _ in 0..<rounds {
                for bounded in [false, true] {
                    lua_pushvalue(L, runner)
                    lua_pushinteger(L, lua_Integer(index))
                    lua_pushboolean(L, bounded ? 1 : 0)
                    lua_pushinteger(L, lua_Integer(iterations))
                    let start = threadCPUNanoseconds()
                    guard mb_pcall_traceback(L, 3, 0) == LUA_OK else { fatalError(String(cString: lua_tolstring(L, -1, nil))) }
                    times[bounded]!.append(Double(threadCPUNanoseconds() - start) / Double(iterations))
                }
            }
            let own = HookDispatchBenchmark.median(times[false]!)
            let bounded = HookDispatchBenchmark.median(times[true]!)
            print(name.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "  %6.0f  %10.0f  %5.2f", own, bounded, own / bounded))
        }
    }

    static func threadCPUNanoseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }
}
