import Foundation
import HookHost
import LuaRuntime
import MoonbaseJSON
import MoonbaseTestSupport
import Synchronization
import Testing

/// The pool's watchdog: a state stuck in C past twice the wall-clock budget is given up and
/// replaced, and what waited on it fails as on a budget error.
@Suite struct HookWatchdogTests {
    /// `host.block(ms)` holds its thread in C (as a runaway C function would), where no budget
    /// reaches; `host.sleep(ms)` waits off the thread, as `http.request` does;
    /// `host.entered(name)` tells the test that a handler has started.
    static let host = LuaModule(name: "host", functions: [
        LuaFunction("entered") { arguments in
            let name = arguments.string(1) ?? ""
            entered.withLock { _ = $0.insert(name) }
            return .results(0)
        },
        LuaFunction("block") { arguments in
            Thread.sleep(forTimeInterval: Double(arguments.integer(1) ?? 0) / 1000)
            return .results(0)
        },
        LuaFunction("sleep") { arguments in
            let milliseconds = arguments.integer(1) ?? 0
            return .suspend(LuaSuspension { _ in
                try? await Task.sleep(for: .milliseconds(milliseconds))
                return .values([])
            })
        },
    ])

    static let entered = Mutex<Set<String>>([])

    /// Waits until a handler has called `host.entered(name)`.
    static func waitUntilEntered(_ name: String) async throws {
        while !entered.withLock({ $0.contains(name) }) { try await Task.sleep(for: .milliseconds(5)) }
    }

    static func limits(wallClock: Duration) -> LuaLimits {
        LuaLimits(instructions: 0, wallClock: wallClock, memoryBytes: 16 << 20)
    }

    @Test func aStateStuckInCIsAbandonedAndReplaced() async throws {
        let folder = try HooksFolder(["stuck.lua": """
            on_record_create("posts", function(e) host.block(e.data.ms) end, {name = "stuck"})
            on_record_update("posts", function(e) assert(e.data.title == "Hello") end)
            """])
        defer { folder.remove() }
        let logs = LogCapture()
        let pool = HookPool(try folder.load(states: 1, limits: Self.limits(wallClock: .milliseconds(200)), modules: [Self.host], logs: logs))
        let outcome = await pool.deliver(event(data: ["ms": 1500]), to: [0], urgent: true)
        let error = try #require(outcome.first?.error)
        #expect(error.kind == .budget)
        #expect(error.message.hasPrefix("hooks/stuck.lua:1: hook exceeded its time budget (0.2 seconds wall clock)"))
        #expect(error.message.hasSuffix("and was abandoned"))

        let abandoned = try #require(pool.abandoned.first)
        #expect(pool.abandoned.count == 1 && abandoned.handler == 0)
        #expect(abandoned.memoryBytes > 0, "the abandoned state's memory is counted")
        let logged = try #require(logs.lines("hook worker abandoned").first)
        #expect(logged.metadata["handler"] == "stuck" && logged.metadata["file"] == "hooks/stuck.lua" && logged.metadata["line"] == "1")
        #expect(Int(logged.metadata["memory"] ?? "") ?? 0 > 0)
        #expect(pool.catalog.statsSnapshot()[0].errors == 1)
        #expect(pool.catalog.statsSnapshot()[0].lastError == error.message, "the listing names the handler")

        let next = await pool.deliver(event(.updated), to: [1], urgent: true)
        #expect(next.first?.error == nil, "a fresh state took its place")
        try await Task.sleep(for: .milliseconds(1600)) // the stuck thread comes back from C, and stays out
        #expect(pool.catalog.statsSnapshot().map(\.calls) == [1, 1])
        let after = await pool.deliver(event(data: ["ms": 0]), to: [0], urgent: true)
        #expect(after.first?.error == nil)
        await pool.shutdown()
    }

    @Test func handlersWaitingOnAnAbandonedStateFailToo() async throws {
        let folder = try HooksFolder(["wait.lua": """
            on_record_create("posts", function(e) host.entered("waiting"); host.sleep(300) end)
            on_record_update("posts", function(e) host.block(3000) end)
            on_record_delete("posts", function(e) end)
            """])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: Self.limits(wallClock: .milliseconds(400)), modules: [Self.host]))
        async let waiting = pool.deliver([(event(), [0]), (event(.deleted), [2])], urgent: true) { _, _ in }
        try await Self.waitUntilEntered("waiting")
        let stuck = await pool.deliver(event(.updated), to: [1], urgent: true)
        #expect(stuck.first?.error?.message.contains("was abandoned") == true)
        let waited = await waiting
        #expect(waited.map { $0.map(\.handler) } == [[0], [2]], "every handler of the batch is answered")
        #expect(waited[0].first?.error?.message == stuck.first?.error?.message, "its coroutine was in the abandoned state")
        #expect(waited[1].first?.error == nil, "the other event had run")
        await pool.shutdown()
    }

    @Test func shutdownEndsWhileAWorkerIsStuck() async throws {
        let folder = try HooksFolder(["stuck.lua": "on_record_create('posts', function(e) host.entered('shutdown'); host.block(60000) end)"])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: Self.limits(wallClock: .milliseconds(100)), modules: [Self.host]))
        let stuck = Task { await pool.deliver(event(), to: [0], urgent: false) }
        try await Self.waitUntilEntered("shutdown")
        await pool.shutdown()
        #expect(await stuck.value.first?.error?.kind == .budget)
    }

    @Test func waitingUntilIdleStopsWhenCancelled() async throws {
        let folder = try HooksFolder(["stuck.lua": "on_record_create('posts', function(e) host.entered('cancel'); host.block(2000) end)"])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: LuaLimits(instructions: 0, wallClock: .zero, memoryBytes: 0), modules: [Self.host]))
        let stuck = Task { await pool.deliver(event(), to: [0], urgent: true) }
        try await Self.waitUntilEntered("cancel")
        let waiter = Task { await pool.waitUntilIdle() }
        waiter.cancel()
        await waiter.value
        #expect(await stuck.value.first?.error == nil, "without a wall-clock budget there is no watchdog")
        await pool.shutdown()
    }
}

/// Time bounds (run on their own by `make test`).
@Suite struct HookWatchdogTimingTests {
    @Test func aBeforeHookAnswersWithinTwiceTheBudgetWhenEveryWorkerIsStuck() async throws {
        let folder = try HooksFolder(["busy.lua": """
            on_record_create("posts", function(e) host.entered(e.data.name); host.block(5000) end)
            before_record_create("posts", function(e) e.data.checked = true end)
            """])
        defer { folder.remove() }
        let budget = Duration.milliseconds(400)
        let pool = HookPool(try folder.load(states: 2, limits: HookWatchdogTests.limits(wallClock: budget), modules: [HookWatchdogTests.host]))
        let names = ["timing-1", "timing-2"]
        let pinned = names.map { name in Task { await pool.deliver(event(data: ["name": .string(name)]), to: [0], urgent: true) } }
        for name in names { try await HookWatchdogTests.waitUntilEntered(name) }
        let started = ContinuousClock.now
        #expect(await pool.runBefore(.created, collection: "posts") { event() } == .rejected(message: "hooks busy", status: 503))
        #expect(ContinuousClock.now - started < budget * 2)
        for task in pinned { #expect(await task.value.first?.error?.kind == .budget) }
        #expect(pool.abandoned.count == 2)
        let later = ContinuousClock.now
        #expect(await pool.runBefore(.created, collection: "posts") { event() } == .proceed(["title": "Hello", "checked": true]))
        #expect(ContinuousClock.now - later < budget * 2)
        await pool.shutdown()
    }

    /// The pattern and its gmatch/gsub variants, in after-hooks on the pool: each ends
    /// with the budget error within twice the wall-clock budget, pcall or not.
    @Test func backtrackingPatternsEndWithinTwiceTheBudgetOnThePool() async throws {
        let folder = try HooksFolder(["patterns.lua": """
            local s, p = string.rep("a", 3000), ".-.-.-.-b"
            on_record_create("posts", function(e) return s:find(p) end)
            on_record_create("posts", function(e) for m in s:gmatch(p) do end end)
            on_record_create("posts", function(e) pcall(string.gsub, s, p, "x") while true do end end)
            """])
        defer { folder.remove() }
        let budget = Duration.milliseconds(500)
        let pool = HookPool(try folder.load(states: 2, limits: HookWatchdogTests.limits(wallClock: budget), modules: []))
        for handler in 0..<3 {
            let started = ContinuousClock.now
            let outcome = await pool.deliver(event(), to: [handler], urgent: true)
            #expect(ContinuousClock.now - started < budget * 2)
            #expect(outcome.first?.error?.kind == .budget)
            #expect(outcome.first?.error?.message.contains("hook exceeded its time budget") == true)
        }
        #expect(pool.abandoned.isEmpty, "the budget held: no state had to be given up")
        await pool.shutdown()
    }
}
