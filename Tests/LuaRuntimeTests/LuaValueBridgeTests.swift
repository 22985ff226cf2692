import LuaRuntime
import MoonbaseTestSupport
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
    }
}
