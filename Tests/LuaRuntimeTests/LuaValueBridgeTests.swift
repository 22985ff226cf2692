import LuaRuntime
import MoonbaseJSON
import Testing

@Suite struct LuaValueBridgeTests {
    @Test func jsonRoundTripsThroughLua() throws {
        let state = try makeState()
        let original = try JSONValue.parse(#"""
        {"title":"héllo ✓","n":42,"f":1.5,"whole":2.0,"yes":true,"no":false,"nothing":null,
         "empty_array":[],"empty_object":{},"nested":{"list":[1,[2,{"deep":"x"}]],"k":"v"},"big":9007199254740993}
        """#)
        let index = state.push(original)
        let back = try state.json(at: index, orderHint: original)
        #expect(back == original)
        #expect(back.serializedString() == original.serializedString(), "order hint keeps the field order")
    }

    @Test func integersStayIntegersAndFloatsStayFloats() throws {
        let state = try makeState()
        #expect(try state.value("return 3") == .int(3))
        #expect(try state.value("return 3.0") == .double(3.0))
        #expect(try state.value("return 7 // 2") == .int(3))
        #expect(try state.value("return 7 / 2") == .double(3.5))
        #expect(try state.value("return math.maxinteger") == .int(Int64.max))
    }

    @Test func luaTablesBecomeObjectsOrArrays() throws {
        let state = try makeState()
        #expect(try state.value("return {1, 2, 3}") == .array([.int(1), .int(2), .int(3)]))
        #expect(try state.value("return {a = 1}") == .object(["a": .int(1)]))
        #expect(try state.value("return {}") == .object([:]))
        #expect(try state.value("return json.array()") == .array([]))
        #expect(try state.value("return {x = json.null}") == .object(["x": .null]))
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
}
