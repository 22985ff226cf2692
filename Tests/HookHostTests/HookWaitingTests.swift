import HookHost
import LuaRuntime
import MoonbaseJSON
import MoonbaseTestSupport
import Synchronization
import Testing

/// Handlers that wait for the host (as `http.request` does) without holding their state's thread.
@Suite struct HookWaitingTests {
    /// `host.sleep(ms)` waits that long off the thread and returns the event's depth and id
    /// as the handler's context saw them. `host.hold()` waits off the thread until the test
    /// releases it (`held`, `released`), so a test can order events without timing them.
    static let host = LuaModule(name: "host", functions: [
        LuaFunction("sleep") { arguments in
            let milliseconds = arguments.integer(1) ?? 0
            let context = arguments.context as? HookCallContext
            return .suspend(LuaSuspension { _ in
                try? await Task.sleep(for: .milliseconds(milliseconds))
                return .values([.string(context?.eventID ?? "none")])
            })
        },
        LuaFunction("hold") { _ in
            held.add(1, ordering: .relaxed)
            return .suspend(LuaSuspension { _ in
                while !released.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(5)) }
                return .values([])
            })
        },
    ])
    /// How many `host.hold()` calls have begun, and whether they may end (one test uses them).
    static let held = Atomic<Int>(0)
    static let released = Atomic<Bool>(false)
    /// A wall clock long enough that a machine busy with other tests cannot run it out.
    static let roomy = LuaLimits(instructions: 50_000_000, wallClock: .seconds(120), memoryBytes: 64 << 20)

    @Test func aWaitingHandlerDoesNotHoldUpOthersAndTheChainGoesOnInOrder() async throws {
        let folder = try HooksFolder(["chain.lua": """
            local order = {}
            on_record_create("posts", function(e)
              order[#order + 1] = "a" .. e.data.n
              if e.data.n == 1 then host.hold() else host.sleep(0) end
              order[#order + 1] = "b" .. e.data.n
            end)
            on_record_create("posts", function(e) order[#order + 1] = "c" .. e.data.n end)
            on_record_update("posts", function(e) error(table.concat(order, ",")) end)
            """])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: Self.roomy, modules: [Self.host]))
        async let slow = pool.deliver(event(data: ["n": 1]), to: [0, 1], urgent: false)
        while Self.held.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(5)) } // the first now waits
        let quick = await pool.deliver(event(data: ["n": 2]), to: [0, 1], urgent: false)
        #expect(quick.map(\.handler) == [0, 1])
        Self.released.store(true, ordering: .relaxed)
        #expect(await slow.map(\.handler) == [0, 1])
        let report = await pool.deliver(event(.updated), to: [2], urgent: true)
        #expect(report.first?.error?.message.hasSuffix("a1,a2,b2,c2,b1,c1") == true,
                "the second event ran while the first waited; each event's handlers kept their order")
        await pool.shutdown()
    }

    @Test func aBeforeHookCanWaitThenChangeOrRefuse() async throws {
        let folder = try HooksFolder(["check.lua": """
            before_record_create("posts", function(e)
              host.sleep(10)
              if e.data.title == "" then reject("title is required", 400) end
              e.data.checked = true
            end)
            """])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: Self.roomy, modules: [Self.host]))
        #expect(await pool.runBefore(.created, collection: "posts") { event(data: ["title": "Hi"]) } == .proceed(["title": "Hi", "checked": true]))
        #expect(await pool.runBefore(.created, collection: "posts") { event(data: ["title": ""]) } == .rejected(message: "title is required", status: 400))
        await pool.shutdown()
    }

    @Test func theBudgetEndsAHandlerThatWaitsTooLong() async throws {
        let folder = try HooksFolder(["late.lua": "on_record_create('posts', function(e) host.sleep(300) end)"])
        defer { folder.remove() }
        let hooks = try folder.load(states: 1, limits: LuaLimits(instructions: 1_000_000, wallClock: .milliseconds(100), memoryBytes: 0),
                                    modules: [Self.host])
        let pool = HookPool(hooks)
        let outcome = await pool.deliver(event(), to: [0], urgent: true)
        #expect(outcome.first?.error?.kind == .budget)
        #expect(pool.catalog.statsSnapshot()[0].errors == 1)
        await pool.shutdown()
    }

    @Test func waitUntilIdleCountsWaitingHandlers() async throws {
        let folder = try HooksFolder(["wait.lua": "on_record_create('posts', function(e) host.sleep(200) end)"])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1, limits: Self.roomy, modules: [Self.host]))
        let delivered = Task { await pool.deliver(event(), to: [0], urgent: false) }
        try await Task.sleep(for: .milliseconds(50))
        await pool.waitUntilIdle()
        #expect(pool.catalog.statsSnapshot()[0].calls == 1, "idle only once the waiting handler finished")
        _ = await delivered.value
        await pool.shutdown()
    }
}

/// Time bounds: `make test` runs the suites named `…TimingTests` on their own, after the others,
/// so that a machine busy with the rest of the tests does not decide them.
@Suite struct HookWaitingTimingTests {
    @Test func manyWaitingHandlersOverlapOnTwoStates() async throws {
        let folder = try HooksFolder(["slow.lua": """
            on_record_create("posts", function(e)
              local id = host.sleep(500)
              assert(id == e.id, "the context is the event's")
            end)
            """])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 2, limits: HookWaitingTests.roomy, modules: [HookWaitingTests.host]))
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: [HookOutcome].self) { group in
            for i in 0..<200 {
                group.addTask { await pool.deliver(event(id: "evt_\(i)"), to: [0], urgent: false) }
            }
            return await group.reduce(into: [HookOutcome]()) { $0 += $1 }
        }
        let elapsed = ContinuousClock.now - started
        #expect(outcomes.count == 200 && outcomes.allSatisfy { $0.error == nil })
        #expect(outcomes.allSatisfy { $0.duration >= .milliseconds(500) }, "the duration includes the wait")
        #expect(elapsed < .seconds(3), "200 handlers waiting 500 ms each on 2 states overlap (took \(elapsed))")
        #expect(pool.catalog.statsSnapshot()[0].calls == 200)
        await pool.shutdown()
    }
}
