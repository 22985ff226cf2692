import HostModules
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// `json` and `log`, the modules every hook has.
@Suite struct StandardModuleTests {
    func makeState(_ limits: LuaLimits = .default, logs: LogCapture = LogCapture()) throws -> LuaState {
        try MoonbaseTestSupport.makeState(limits, modules: standardModules, logger: logs.logger)
    }

    @Test func arraysAndNullHaveTheirOwnValues() throws {
        let state = try makeState()
        #expect(try state.value("return json.array()") == .array([]))
        #expect(try state.value("return json.array({})") == .array([]))
        #expect(try state.value("local t = {1}; return json.array(t) == t") == .bool(true))
        #expect(try state.value("return {x = json.null}") == .object(["x": .null]))
        #expect(try #require(state.failure("return json.array(5)")).message.contains("table expected, got number"))
        #expect(try #require(state.failure("return json.array(setmetatable({}, {__metatable = 'mine'}))")).message
            .contains("cannot change a protected metatable"))
    }

    @Test func emptyArraysFromJSONStayArrays() throws {
        let state = try makeState()
        #expect(try state.value(#"return json.encode(json.decode('{"tags":[],"o":{}}'))"#) == .string(#"{"o":{},"tags":[]}"#))
        #expect(try state.value(#"local t = json.decode('[]'); return #t"#) == .int(0))
    }

    @Test func jsonModuleEncodesAndDecodes() throws {
        let state = try makeState()
        #expect(try state.value(#"return json.decode('{"a":[1,2.5,"x",null,true]}').a[2]"#) == .double(2.5))
        #expect(try state.value(#"return json.decode('{"a":null}').a == json.null"#) == .bool(true))
        #expect(try state.value(#"return json.encode({1, "two", {three = 3}})"#) == .string(#"[1,"two",{"three":3}]"#))
    }

    @Test func malformedJSONIsAClearError() throws {
        let state = try makeState()
        let error = try #require(state.failure(#"return json.decode('{"a":')"#))
        #expect(error.message.hasPrefix("hooks/test.lua:1: json.decode:"))
        let notString = try #require(state.failure("return json.decode(42)"))
        #expect(notString.message.contains("string expected, got number"))
    }

    @Test func valuesThatAreNotJSONGiveClearErrors() throws {
        let state = try makeState()
        #expect(try #require(state.failure("return json.encode({f = print})")).message.contains("cannot convert a function value to JSON (at f)"))
        #expect(try #require(state.failure("local t = {}; t.self = t; return json.encode(t)")).message.contains("a table that contains itself to JSON (at self)"))
        #expect(try #require(state.failure("return json.encode({a = {b = {1, {c = print}}}})")).message
            .hasSuffix("cannot convert a function value to JSON (at a.b[2].c)"))
        #expect(try #require(state.failure("return json.encode({{x = {[2] = 1}}})")).message.hasSuffix("sparse array to JSON (at [1].x)"))
        #expect(try state.value("local shared = {1}; return json.encode({a = shared, b = shared})") == .string(#"{"a":[1],"b":[1]}"#), "a table seen twice is not a cycle")
        #expect(try #require(state.failure("return json.encode({1, nil, 3})")).message.contains("sparse array"))
        #expect(try #require(state.failure("return json.encode({1, a = 2})")).message.contains("both string and integer keys"))
        #expect(try #require(state.failure("return json.encode(0/0)")).message.contains("cannot convert"))
        #expect(try #require(state.failure("return json.encode({[true] = 1})")).message.contains("boolean key"))
        #expect(try #require(state.failure("local t = {} for i = 1, 600 do t = {t} end return json.encode(t)")).message.contains("nesting deeper than 512 levels"))
    }

    /// 61 tables standing for 2^61 values: without a bound the conversion would run (and allocate,
    /// outside the memory cap) for ever.
    @Test func tablesSharedManyTimesOverHaveABound() throws {
        let state = try makeState(LuaLimits(instructions: 0, wallClock: .seconds(60), memoryBytes: 4 << 20))
        let error = try #require(state.failure("local t = {1} for i = 1, 60 do t = {t, t} end return json.encode(t)"))
        #expect(error.message.contains("cannot convert to JSON: more than 262144 values (tables shared many times over?)"))
        #expect(try state.value("local t = {1} for i = 1, 10 do t = {t, t} end return #json.encode(t)") == .int(6141))
    }

    @Test func logLinesCarryTheCallersFileLineAndFields() throws {
        let logs = LogCapture()
        let state = try makeState(logs: logs)
        _ = try state.run("""
            log.info("saved", {id = "r1", n = 3})
            local function deeper() log.warn(42) end
            deeper()
            log.error({a = 1})
            log.debug(nil)
            print("printed", 2)
            """, chunk: "@hooks/audit.lua").get()
        let lines = logs.all.map { "\($0.level) \($0.message) \($0.metadata["file"] ?? "") \($0.metadata["line"] ?? "")" }
        #expect(lines == ["info saved hooks/audit.lua 1", "warning 42 hooks/audit.lua 2", #"error {"a":1} hooks/audit.lua 4"#,
                          "debug nil hooks/audit.lua 5", "info printed\t2 hooks/audit.lua 6"])
        #expect(logs.all.first?.metadata["id"] == "r1")
        #expect(logs.all.first?.metadata["n"] == "3")
    }
}
