import Logging
import LuaRuntime
import MoonbaseTestSupport
import MoonbaseJSON
import Testing

/// Host functions that wait: the handler's coroutine yields, the test runs the operation and
/// resumes it, as the hook host's workers do.
@Suite struct LuaSuspensionTests {
    static let host = LuaModule(name: "host", functions: [
        LuaFunction("double") { arguments in
            guard let number = arguments.integer(1) else { return .error("host.double: number expected") }
            return .suspend(LuaSuspension { _ in .values([.int(number * 2)]) })
        },
        LuaFunction("fail") { arguments in
            let message = arguments.string(1) ?? ""
            return .suspend(LuaSuspension { _ in .failure(message) })
        },
        LuaFunction("raise") { arguments in
            let message = arguments.string(1) ?? ""
            return .suspend(LuaSuspension { _ in .error(message) })
        },
        LuaFunction("sleep") { arguments in
            let milliseconds = arguments.integer(1) ?? 0
            return .suspend(LuaSuspension { deadline in
                try? await Task.sleep(for: .milliseconds(milliseconds))
                return .values([.bool(deadline != nil)])
            })
        },
        LuaFunction("context") { arguments in
            arguments.push(.string(arguments.context as? String ?? "none"))
            return .results(1)
        },
    ])

    func makeHostState(_ limits: LuaLimits = .default) throws -> LuaState {
        try LuaState(limits: limits, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), modules: [Self.host])
    }

    /// Loads `source`, which returns the handler function.
    func handler(_ state: LuaState, _ source: String) throws -> LuaRef {
        let environment = try state.makeEnvironment(chunkName: "@hooks/test.lua").get()
        let chunk = try state.load(Array(source.utf8), chunkName: "@hooks/test.lua", environment: environment).get()
        let base = state.top
        _ = try state.call(chunk).get()
        return state.reference(at: base + 1)
    }

    /// Calls the handler and drives it to its end; returns its first result and how often it waited.
    func drive(_ state: LuaState, _ function: LuaRef, _ argument: JSONValue = .null,
               context: String? = nil) async -> (Result<JSONValue?, LuaError>, waits: Int) {
        let base = state.top
        defer { state.setTop(base) }
        state.callContext = context
        var outcome = state.callHandler(function, argument: state.push(argument))
        var waits = 0
        while case .suspended(let call) = outcome {
            waits += 1
            outcome = state.resume(call, with: await call.suspension.operation(call.deadline))
        }
        return (finish(state, outcome, base: base + 1), waits)
    }

    func finish(_ state: LuaState, _ outcome: LuaCallOutcome, base: Int32) -> Result<JSONValue?, LuaError> {
        switch outcome {
        case .returned(let count):
            return .success(count > 0 ? try? state.json(at: base + 1) : nil)
        case .failed(let error):
            return .failure(error)
        case .suspended:
            return .failure(LuaError(kind: .yield, message: "still waiting"))
        }
    }

    @Test func waitsAndResumesWithTheOperationsValues() async throws {
        let state = try makeHostState()
        let function = try handler(state, "return function(x) local a = host.double(x); local b = host.double(a); return a + b end")
        let (result, waits) = await drive(state, function, .int(5))
        #expect(try result.get() == .int(30))
        #expect(waits == 2)
    }

    @Test func anExpectedFailureReturnsNilAndAMessage() async throws {
        let state = try makeHostState()
        let function = try handler(state, #"return function() local v, err = host.fail("timeout after 5 ms"); return {v == nil, err} end"#)
        #expect(try await drive(state, function).0.get() == [true, "timeout after 5 ms"])
    }

    @Test func anErrorIsRaisedWhereTheHandlerWaitedAndPcallCatchesIt() async throws {
        let state = try makeHostState()
        let caught = try handler(state, #"return function() local ok, err = pcall(host.raise, "boom"); return {ok, err} end"#)
        let result = try await drive(state, caught).0.get()
        #expect(result == [false, "hooks/test.lua:1: boom"])

        let uncaught = try handler(state, "return function()\n  host.raise('refused')\nend")
        if case .failure(let error) = await drive(state, uncaught).0 {
            #expect(error.kind == .runtime)
            #expect(error.message == "hooks/test.lua:2: refused")
        } else {
            Issue.record("the error was not raised")
        }
    }

    @Test func callsWaitingOnOneStateInterleaveEachWithItsContext() async throws {
        let state = try makeHostState()
        let function = try handler(state, "return function(x) local v = host.double(x); return host.context() .. ':' .. v end")
        let base = state.top
        state.callContext = "first"
        guard case .suspended(let first) = state.callHandler(function, argument: state.push(.int(1))) else {
            Issue.record("the first call did not wait"); return
        }
        state.callContext = "second"
        guard case .suspended(let second) = state.callHandler(function, argument: state.push(.int(2))) else {
            Issue.record("the second call did not wait"); return
        }
        state.callContext = nil
        state.setTop(base)
        let secondResult = finish(state, state.resume(second, with: await second.suspension.operation(nil)), base: base)
        #expect(try secondResult.get() == "second:4")
        state.setTop(base)
        let firstResult = finish(state, state.resume(first, with: await first.suspension.operation(nil)), base: base)
        #expect(try firstResult.get() == "first:2")
        state.setTop(base)
    }

    @Test func waitingIsRefusedWhileAFileLoads() throws {
        let state = try makeHostState()
        let environment = try state.makeEnvironment(chunkName: "@hooks/test.lua").get()
        let chunk = try state.load(Array("host.double(1)".utf8), chunkName: "@hooks/test.lua", environment: environment).get()
        guard case .failure(let error) = state.call(chunk) else { Issue.record("the load-time wait ran"); return }
        #expect(error.message.hasPrefix("hooks/test.lua:1: this call waits for the host"))
    }

    @Test func waitingIsRefusedInsideTheScriptsOwnCoroutine() async throws {
        let state = try makeHostState()
        let function = try handler(state, "return function() return coroutine.wrap(function() return host.double(1) end)() end")
        guard case .failure(let error) = await drive(state, function).0 else { Issue.record("the wait ran"); return }
        #expect(error.message.contains("inside a coroutine of its own"))
    }

    @Test func theWallClockBudgetIncludesTheWait() async throws {
        let state = try makeHostState(LuaLimits(instructions: 0, wallClock: .milliseconds(50), memoryBytes: 0))
        let function = try handler(state, "return function() host.sleep(200); return 'finished' end")
        guard case .failure(let error) = await drive(state, function).0 else { Issue.record("the handler outlived its budget"); return }
        #expect(error.kind == .budget)
        #expect(error.message.contains("wall clock"))

        let roomy = try makeHostState(LuaLimits(instructions: 0, wallClock: .seconds(30), memoryBytes: 0))
        let quick = try handler(roomy, "return function() return host.sleep(1) end")
        #expect(try await drive(roomy, quick).0.get() == true, "the operation is told the deadline")
    }

    @Test func theInstructionBudgetCountsAcrossWaits() async throws {
        let state = try makeHostState(LuaLimits(instructions: 300_000, wallClock: .seconds(10), memoryBytes: 0))
        let spin = "local n = 0; for i = 1, 100000 do n = n + i end"
        let once = try handler(state, "return function() \(spin); host.double(1); return 'ok' end")
        #expect(try await drive(state, once).0.get() == "ok")
        let twice = try handler(state, "return function() \(spin); host.double(1); \(spin); return 'ok' end")
        guard case .failure(let error) = await drive(state, twice).0 else { Issue.record("the budget restarted after the wait"); return }
        #expect(error.kind == .budget)
        #expect(try await drive(state, once).0.get() == "ok", "the state stays usable")
    }
}
