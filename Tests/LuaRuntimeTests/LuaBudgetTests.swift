import LuaRuntime
import MoonbaseTestSupport
import MoonbaseJSON
import Testing

@Suite struct LuaBudgetTests {
    static let tight = LuaLimits(instructions: 2_000_000, wallClock: .seconds(10), memoryBytes: 16 << 20)

    @Test func infiniteLoopEndsWithTimeBudget() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure("while true do end"))
        #expect(error.kind == .budget)
        #expect(error.message == "hooks/test.lua:1: hook exceeded its time budget (2000000 instructions)")
        #expect(try state.value("return 1 + 1") == .int(2), "the state stays usable")
    }

    @Test func pcallCannotSwallowTheBudget() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure("""
            while true do
              pcall(function() while true do end end)
            end
            """))
        #expect(error.kind == .budget)
    }

    @Test func loopInsideANonYieldableCallbackIsStoppedToo() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure("""
            local t = {3, 2, 1}
            table.sort(t, function(a, b)
              while true do pcall(function() while true do end end) end
            end)
            """))
        #expect(error.kind == .budget)
        #expect(error.message.contains("hook exceeded its time budget"))
    }

    @Test func loopInsideACoroutineIsStopped() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure("""
            local co = coroutine.wrap(function() while true do end end)
            while true do pcall(co) end
            """))
        #expect(error.kind == .budget)
    }

    @Test func wallClockBudgetStopsASlowCall() throws {
        let state = try makeState(LuaLimits(instructions: 0, wallClock: .milliseconds(50), memoryBytes: 0))
        let error = try #require(state.failure("while true do end"))
        #expect(error.kind == .budget)
        #expect(error.message.contains("wall clock"))
    }

    @Test func memoryBombEndsWithNotEnoughMemory() throws {
        let state = try makeState(Self.tight)
        let error = try #require(state.failure(#"local s = string.rep("x", 2^30); return #s"#))
        #expect(error.kind == .memory)
        #expect(error.message.contains("not enough memory"))
        #expect(state.memoryInUse < 16 << 20)
        #expect(try state.value(#"return #string.rep("x", 1000)"#) == .int(1000), "the state stays usable")
    }

    @Test func growingTableEndsWithNotEnoughMemory() throws {
        let state = try makeState(LuaLimits(instructions: 0, wallClock: .seconds(20), memoryBytes: 8 << 20))
        let error = try #require(state.failure("local t = {} local i = 0 while true do i = i + 1; t[i] = {i} end"))
        #expect(error.message.contains("not enough memory"))
        state.collectGarbage()
        #expect(try state.value("return 'alive'") == .string("alive"))
    }

    @Test func unboundedRecursionIsLuasOwnError() throws {
        let state = try makeState()
        let error = try #require(state.failure("local function f(n) return 1 + f(n + 1) end return f(1)"))
        #expect(error.message.contains("stack overflow"))
        let throughPcall = try #require(state.failure("local function f() return pcall(f) end; local _, e = f(); error(e)"))
        #expect(!throughPcall.message.isEmpty)
        #expect(try state.value("return 'alive'") == .string("alive"))
    }
}
