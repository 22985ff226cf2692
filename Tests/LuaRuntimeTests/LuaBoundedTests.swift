import CLua
import LuaBounded
import LuaRuntime
import MoonbaseTestSupport
import MoonbaseJSON
import Testing

/// The bounded pattern matcher, string.rep and table functions (Sources/LuaBounded): the same
/// results as Lua's own, and budgets that hold inside them.
@Suite struct LuaBoundedTests {
    static let tight = LuaLimits(instructions: 2_000_000, wallClock: .seconds(60), memoryBytes: 16 << 20)
    /// Backtracks for hours in Lua's own matcher (issue #18).
    static let backtracking = #"local s, p = string.rep("a", 3000), ".-.-.-.-b" "#

    @Test func boundedFunctionsMatchLuasOwn() throws {
        let runtime = UnsafeMutablePointer<mb_runtime>.allocate(capacity: 1)
        runtime.initialize(to: mb_runtime(used: 0, limit: 0, cap_lifted: 0, step: 1000, instructions: 0, instruction_limit: 0,
                                          deadline_ns: 0, exceeded: Int32(MB_WITHIN_BUDGET), resume_count: 0, resume_raise: 0))
        defer { runtime.deallocate() }
        let L = try #require(mb_newstate(runtime))
        defer { lua_close(L) }
        #expect(mb_openlibs(L) == LUA_OK)
        #expect(luaL_loadstring(L, boundedCorpus) == LUA_OK)
        lua_pushcclosure(L, mb_open_bounded, 0)
        #expect(mb_pcall_traceback(L, 0, 1) == LUA_OK)
        guard mb_pcall_traceback(L, 1, 2) == LUA_OK else {
            Issue.record("the corpus failed: \(String(cString: lua_tolstring(L, -1, nil)))")
            return
        }
        let compared = mb_tointeger(L, -2)
        let failures = String(cString: lua_tolstring(L, -1, nil))
        #expect(compared > 10_000, "about 1,600 pattern/subject pairs through find, match, gmatch and gsub, and the other functions")
        #expect(failures.isEmpty, "\(failures)")
    }

    /// The issue's pattern through each function, then inside pcall: the budget holds either way.
    @Test(arguments: [
        "return s:find(p)",
        "return string.match(s, p)",
        "for m in s:gmatch(p) do end",
        "return (s:gsub(p, 'x'))",
        "return (s:gsub(p, function(m) return m end))",
        "for i = 1, 10 do pcall(string.find, s, p) end return 'escaped'",
        "for i = 1, 10 do pcall(function() return s:find(p) end) end return 'escaped'",
        "local ok, e = pcall(string.gsub, s, p, 'x'); while true do pcall(error) end",
        // Not yieldable: a sort's order function, a gsub's replacement function.
        "local t = {3, 2, 1}; table.sort(t, function(a, b) pcall(string.find, s, p) return a < b end) return 'escaped'",
        "return (('xyz'):gsub('.', function(c) pcall(string.match, s, p) return c end))",
        // The script's own coroutine: stopped there, then again in the handler's.
        "local co = coroutine.wrap(function() return s:find(p) end) for i = 1, 3 do pcall(co) end return 'escaped'",
    ])
    func backtrackingPatternsEndWithTheBudgetPcallOrNot(_ script: String) throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure(Self.backtracking + script))
        #expect(error.kind == .budget)
        #expect(error.message.hasSuffix("hook exceeded its time budget (2000000 instructions)"))
        #expect(try state.value(#"return ("a-b"):gsub("-", "+")"#) == .string("a+b"), "the state stays usable")
    }

    @Test func aReplacementFunctionThatLoopsIsStopped() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure("return (('abc'):gsub('.', function() while true do pcall(error) end end))"))
        #expect(error.kind == .budget)
    }

    /// Lua's own functions would run for days on these, with no memory to run out of.
    @Test(arguments: [
        "table.move({}, 1, 1 << 50, 2)",
        "table.insert(proxy, 1, 'x')",
        "table.remove(proxy, 1)",
        "table.sort(proxy, math.ult)",
        "table.concat(proxy)",
    ])
    func cFunctionsThatLoopAreBounded(_ call: String) throws {
        let state = try makeState(Self.tight)
        let proxy = "local proxy = setmetatable({}, {__len = function() return (1 << 31) - 2 end, __index = rawlen, __newindex = rawequal}) "
        #expect(try #require(state.failure(proxy + call)).kind == .budget)
    }

    /// Lua's own plain search is quadratic: this one would take hours.
    @Test func plainFindIsLinear() throws {
        let state = try makeState(Self.tight)
        #expect(try state.value("local s = ('a'):rep(1 << 20) return s:find(('a'):rep(1 << 19) .. 'b', 1, true)") == .null)
        #expect(try state.value("return ('a.b'):find('.', 1, true)") == .int(2))
    }

    @Test func repeatingNothingTakesNoTime() throws {
        let state = try makeState(Self.tight)
        #expect(try state.value(#"return #string.rep("", 1 << 50) + #(""):rep(1 << 50, "")"#) == .int(0))
        #expect(try state.value(#"return ("ab"):rep(3, ",")"#) == .string("ab,ab,ab"))
        #expect(try #require(state.failure(#"return ("x"):rep(1 << 40)"#)).message.contains("resulting string too large"))
    }
}

/// Time bounds (run on their own by `make test`).
@Suite struct LuaBoundedTimingTests {
    @Test func aBacktrackingPatternEndsWithinTwiceTheWallClockBudget() throws {
        let budget = Duration.milliseconds(500)
        let state = try makeState(LuaLimits(instructions: 0, wallClock: budget, memoryBytes: 16 << 20))
        for call in ["return s:find(p)", "for m in s:gmatch(p) do end", "return (s:gsub(p, '%0'))"] {
            let started = ContinuousClock.now
            let error = try #require(state.failure(LuaBoundedTests.backtracking + "for i = 1, 3 do pcall(function() " + call + " end) end"))
            let elapsed = ContinuousClock.now - started
            #expect(error.kind == .budget)
            #expect(error.message.contains("wall clock"))
            #expect(elapsed < budget * 2, "\(call) took \(elapsed)")
        }
    }
}
