import LuaRuntime
import MoonbaseTestSupport
import MoonbaseJSON
import Testing

@Suite struct LuaSandboxTests {
    @Test(arguments: ["io", "package", "dofile", "loadfile", "os.execute", "os.exit", "os.remove", "os.rename",
                      "os.tmpname", "debug.getinfo", "debug.sethook", "debug.setmetatable", "string.dump"])
    func forbiddenFunctionsAreAbsent(_ name: String) throws {
        let state = try makeState()
        #expect(try state.value("return \(name) == nil") == .bool(true))
    }

    @Test(arguments: ["os.time", "os.clock", "os.date", "os.getenv", "debug.traceback", "string.format", "table.concat",
                      "math.floor", "utf8.char", "coroutine.wrap", "pcall", "setmetatable", "print"])
    func allowedFunctionsArePresent(_ name: String) throws {
        let state = try makeState()
        #expect(try state.value("return type(\(name))") == .string("function"))
    }

    @Test func callingForbiddenFunctionsFails() throws {
        let state = try makeState()
        #expect(try #require(state.failure(#"os.execute("true")"#)).message.contains("attempt to call a nil value (field 'execute')"))
        #expect(try #require(state.failure("os.exit(1)")).message.contains("attempt to call a nil value"))
        #expect(try #require(state.failure(#"io.open("/etc/passwd")"#)).message.contains("attempt to index a nil value (global 'io')"))
        #expect(try #require(state.failure(#"package.loadlib("x", "y")"#)).message.contains("global 'package'"))
    }

    @Test func binaryChunksAreRefused() throws {
        let state = try makeState()
        #expect(try state.value(#"local f, err = load("\27Lua\84\0"); return err"#) == .string("attempt to load a binary chunk (mode is 't')"))
        #expect(try #require(state.failure(#"load("return 1", "x", "b")"#)).message.contains("only text chunks"))
    }

    @Test func loadedChunksSeeTheSandboxNotTheRealGlobals() throws {
        let state = try makeState()
        #expect(try state.value(#"return load("return io == nil and os.execute == nil")()"#) == .bool(true))
    }

    @Test func requireLoadsOnlyHostModules() throws {
        let state = try makeState(loader: { name in
            name == "_utils" ? .success((Array("return { twice = function(x) return 2 * x end }".utf8), "@hooks/_utils.lua"))
                             : .failure(LuaConversionError("module '\(name)' not found"))
        })
        #expect(try state.value(#"return require("_utils").twice(21)"#) == .int(42))
        #expect(try state.value(#"return require("_utils") == require("_utils")"#) == .bool(true), "loaded once per state")
        #expect(try #require(state.failure(#"require("socket")"#)).message.contains("module 'socket' not found"))
    }

    @Test func gcMetamethodsAndGCControlAreRefused() throws {
        let state = try makeState()
        #expect(try #require(state.failure("setmetatable({}, {__gc = function() end})")).message.contains("__gc"))
        #expect(try #require(state.failure(#"collectgarbage("stop")"#)).message.contains("not available"))
        #expect(try state.value(#"return collectgarbage("count") > 0"#) == .bool(true))
    }

    @Test func stringMetatableIsHidden() throws {
        let state = try makeState()
        #expect(try state.value(#"return getmetatable("")"#) == .bool(false))
        #expect(try state.value(#"return ("abc"):upper()"#) == .string("ABC"))
    }

    @Test func environmentsDoNotShareGlobalsOrLibraries() throws {
        let state = try makeState()
        let a = try state.makeEnvironment(chunkName: "@hooks/a.lua").get()
        let b = try state.makeEnvironment(chunkName: "@hooks/b.lua").get()
        _ = try state.runIn(a, "counter = 1; string.upper = function() return 'hacked' end; math.pi = 3").get()
        #expect(try state.runIn(b, "return counter == nil").get() == .bool(true))
        #expect(try state.runIn(b, "return string.upper('x')").get() == .string("X"))
        #expect(try state.runIn(b, "return math.pi > 3.14").get() == .bool(true))
        #expect(try state.runIn(a, "return counter").get() == .int(1))
    }

    @Test func errorsCarryFileLineAndTraceback() throws {
        let state = try makeState()
        let syntax = try #require(state.failure("local x = = 1"))
        #expect(syntax.kind == .syntax)
        #expect(syntax.message.hasPrefix("hooks/test.lua:1:"))
        let runtime = try #require(state.failure("local t = nil\n\nreturn t.x"))
        #expect(runtime.kind == .runtime)
        #expect(runtime.message.hasPrefix("hooks/test.lua:3: attempt to index a nil value"))
        #expect(runtime.traceback?.contains("hooks/test.lua:3") == true)
        let table = try #require(state.failure(#"error({message = "structured", code = 7})"#))
        #expect(table.message == "structured")
        #expect(table.value == .object(["message": .string("structured"), "code": .int(7)]))
        // Without a message the table itself is shown, as JSON, where it was raised.
        let coded = try #require(state.failure("local x = 1\nerror({code = 42})"))
        #expect(coded.message == #"hooks/test.lua:2: {"code":42}"#)
    }

    @Test func hostFunctionsRaiseWithoutCrossingSwiftFrames() throws {
        let state = try makeState()
        let fail = state.makeFunction { _ in .error("nope") }
        let add = state.makeFunction { arguments in
            guard let a = arguments.integer(1), let b = arguments.integer(2) else { return .error("add: numbers expected") }
            arguments.push(.int(a + b))
            return .results(1)
        }
        let env = try state.makeEnvironment(chunkName: "@hooks/host.lua").get()
        let caller = try state.load(Array("local fail, add = ...; local ok, err = pcall(function() fail() end); return {ok = ok, err = err, sum = add(2, 3)}".utf8),
                                    chunkName: "@hooks/host.lua", environment: env).get()
        let base = state.top
        let failIndex = state.push(fail)
        let addIndex = state.push(add)
        let count = try state.call(caller, arguments: failIndex, addIndex).get()
        #expect(count == 1)
        #expect(try state.json(at: state.top) == .object(["ok": .bool(false), "err": .string("hooks/host.lua:1: nope"), "sum": .int(5)]))
        state.setTop(base)
        for _ in 0..<10_000 { _ = try state.call(caller, arguments: state.push(fail), state.push(add)).get(); state.setTop(base) }
        #expect(try state.value("return 'alive'") == .string("alive"))
    }
}
