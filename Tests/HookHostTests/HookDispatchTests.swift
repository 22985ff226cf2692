import HookHost
import MoonbaseTestSupport
import LuaRuntime
import MoonbaseJSON
import Testing

@Suite struct HookDispatchTests {
    @Test func afterHandlersSeeTheEventAndAFailingOneDoesNotStopTheNext() throws {
        let folder = try HooksFolder(["a.lua": """
            on_record_update("posts", function(e)
              log.info("seen", {type = e.type, id = e.id, title = e.data.title, old = e.old_data.title,
                                coll = e.collection_name, rec = e.record_id, ts = e.timestamp})
            end)
            on_record_update("posts", function(e) error("boom") end)
            on_record_update("posts", function(e) while true do end end)
            on_record_update("posts", function(e) local s = string.rep("x", 2^30) end)
            on_record_update("posts", function(e) print("still", "running") end)
            """])
        defer { folder.remove() }
        let logs = LogCapture()
        let hooks = try folder.load(limits: LuaLimits(instructions: 1_000_000, wallClock: .seconds(5), memoryBytes: 32 << 20), logs: logs)
        let handlers = hooks.catalog.matching(.after, .updated, collection: "posts")
        hooks.runtimes[0].runAfter(event(.updated, data: ["title": "New"], oldData: ["title": "Old"]), handlers: handlers)

        let seen = try #require(logs.all.first { $0.message == "seen" })
        #expect(seen.metadata["type"] == "record.updated" && seen.metadata["title"] == "New" && seen.metadata["old"] == "Old")
        #expect(seen.metadata["coll"] == "posts" && seen.metadata["rec"] == "rec_1" && seen.metadata["id"] == "evt_1")
        #expect(seen.metadata["ts"] == "2026-11-21T12:00:00.000Z" && seen.metadata["file"] == "hooks/a.lua" && seen.metadata["line"] == "2")
        let printed = try #require(logs.all.first { $0.message == "still\trunning" })
        #expect(printed.metadata["file"] == "hooks/a.lua")

        let stats = hooks.catalog.statsSnapshot()
        #expect(stats.map(\.calls) == [1, 1, 1, 1, 1])
        #expect(stats.map(\.errors) == [0, 1, 1, 1, 0])
        #expect(stats[1].lastError == "hooks/a.lua:5: boom")
        #expect(stats[2].lastError?.contains("hook exceeded its time budget") == true)
        #expect(stats[3].lastError?.contains("not enough memory") == true)
        let failure = try #require(logs.all.first { $0.message == "hook failed" })
        #expect(failure.metadata["file"] == "hooks/a.lua" && failure.metadata["line"] == "5")
        #expect(failure.metadata["traceback"]?.contains("stack traceback") == true)
    }

    @Test func beforeHookChangesDataInPlaceOrByReturningATable() throws {
        let folder = try HooksFolder([
            "1.lua": "before_record_create('posts', function(e) e.data.slug = 'hello'; e.data.draft = nil end)",
            "2.lua": "before_record_create('posts', function(e) local d = e.data; d.tags = json.array(); return d end)",
            "3.lua": "before_record_create('posts', function(e) e.data.seen_slug = e.data.slug; e.data.meta.m = 3 end)",
        ])
        defer { folder.remove() }
        let hooks = try folder.load()
        let outcome = hooks.runtimes[0].runBefore(event(data: ["title": "Hi", "draft": true, "author": "ada", "meta": ["z": 1, "a": 2]]),
                                                  handlers: [0, 1, 2])
        guard case .proceed(let data) = outcome else { Issue.record("expected proceed, got \(outcome)"); return }
        #expect(data == ["title": "Hi", "author": "ada", "meta": ["z": 1, "a": 2, "m": 3], "slug": "hello", "tags": .array([]), "seen_slug": "hello"])
        #expect(data.keys == ["title", "author", "meta", "seen_slug", "slug", "tags"], "existing fields keep their order; new ones follow, sorted")
        guard case .object(let meta)? = data["meta"] else { Issue.record("meta is not an object"); return }
        #expect(meta.keys == ["z", "a", "m"], "nested objects too")
    }

    @Test func rejectRefusesWithStatusAndStopsTheChain() throws {
        let folder = try HooksFolder([
            "1.lua": "before_record_create('posts', function(e) if not e.data.title then reject('title is required') end end)",
            "2.lua": "before_record_create('posts', function(e) if e.data.title == 'teapot' then reject('no tea', 418) end end)",
            "3.lua": "before_record_create('posts', function(e) log.info('third ran') end)",
        ])
        defer { folder.remove() }
        let logs = LogCapture()
        let hooks = try folder.load(logs: logs)
        let runtime = hooks.runtimes[0]
        #expect(runtime.runBefore(event(data: [:]), handlers: [0, 1, 2]) == .rejected(message: "title is required", status: 422))
        #expect(runtime.runBefore(event(data: ["title": "teapot"]), handlers: [0, 1, 2]) == .rejected(message: "no tea", status: 418))
        #expect(!logs.all.contains { $0.message == "third ran" })
        #expect(runtime.runBefore(event(data: ["title": "ok"]), handlers: [0, 1, 2]) == .proceed(["title": "ok"]))
        #expect(logs.all.contains { $0.message == "third ran" })
    }

    @Test func beforeHookErrorsFailClosed() throws {
        let folder = try HooksFolder([
            "err.lua": "before_record_create('posts', function(e) error('secret detail') end)",
            "loop.lua": "before_record_update('posts', function(e) while true do end end)",
            "badstatus.lua": "before_record_delete('posts', function(e) reject('x', 200) end)",
            "baddata.lua": "before_record_create('pages', function(e) e.data.f = print end)",
        ])
        defer { folder.remove() }
        let hooks = try folder.load(limits: LuaLimits(instructions: 1_000_000, wallClock: .seconds(5), memoryBytes: 32 << 20))
        let runtime = hooks.runtimes[0]
        let catalog = hooks.catalog
        guard case .failed(let message) = runtime.runBefore(event(), handlers: catalog.matching(.before, .created, collection: "posts")) else {
            Issue.record("expected failure"); return
        }
        #expect(message.contains("secret detail"))
        guard case .failed = runtime.runBefore(event(.updated), handlers: catalog.matching(.before, .updated, collection: "posts")) else {
            Issue.record("expected failure"); return
        }
        guard case .failed(let status) = runtime.runBefore(event(.deleted), handlers: catalog.matching(.before, .deleted, collection: "posts")) else {
            Issue.record("expected failure"); return
        }
        #expect(status.contains("status must be an integer from 400 to 599"))
        guard case .failed(let data) = runtime.runBefore(event(collection: "pages"), handlers: catalog.matching(.before, .created, collection: "pages")) else {
            Issue.record("expected failure"); return
        }
        #expect(data.contains("cannot convert a function value to JSON (at f)"))
    }

    @Test func concurrentDispatchFromManyTasksCountsEveryCall() async throws {
        let folder = try HooksFolder([
            "count.lua": """
                local seen = 0
                on_record_create("posts", function(e) seen = seen + 1 end)
                on_any_event(function(e) local s = 0 for i = 1, 100 do s = s + i end end)
                before_record_create("posts", function(e) e.data.n = e.data.i * 2 end)
                """,
        ])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 2))
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<100 {
                group.addTask {
                    let outcome = await pool.runBefore(.created, collection: "posts") { event(data: ["i": .int(Int64(i))]) }
                    _ = await pool.deliver(event(), to: pool.catalog.matching(.after, .created, collection: "posts"), urgent: false)
                    return outcome == .proceed(["i": .int(Int64(i)), "n": .int(Int64(2 * i))])
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        await pool.waitUntilIdle()
        #expect(results.count == 100 && results.allSatisfy { $0 })
        #expect(pool.catalog.statsSnapshot().map(\.calls) == [100, 100, 100])
        await pool.shutdown()
    }

    @Test func deliverReturnsOnceTheHandlersHaveRun() async throws {
        let folder = try HooksFolder(["sync.lua": """
            on_record_create("posts", function(e) local t = os.clock() while os.clock() - t < 0.05 do end end, {async = false})
            """])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 1))
        let outcomes = await pool.deliver(event(), to: [0], urgent: true)
        #expect(outcomes.map(\.handler) == [0] && outcomes[0].error == nil && outcomes[0].duration > .zero)
        #expect(pool.catalog.statsSnapshot()[0].calls == 1, "the call returned only after the handler ran")
        await pool.shutdown()
    }

    @Test func listingShowsFilesHandlersAndStats() throws {
        let folder = try HooksFolder([
            "broken.lua": "x = = 1",
            "notifications.lua": "function on_new_post(e) end\non_record_create('posts', on_new_post)",
        ])
        defer { folder.remove() }
        let hooks = try folder.load()
        hooks.runtimes[0].runAfter(event(), handlers: [0])
        let listing = hooks.catalog.listing().serializedString()
        #expect(listing == #"[{"file":"hooks/broken.lua","module":"broken","status":"failed","error":"hooks/broken.lua:1: unexpected symbol near '='","functions":[],"handlers":[]},"#
            + #"{"file":"hooks/notifications.lua","module":"notifications","status":"loaded","functions":["on_new_post"],"handlers":[{"name":"on_new_post","event":"record.created","collection":"posts","line":1,"async":true,"retries":0,"order":"record","calls":1,"errors":0,"last_error":null}]}]"#)
    }
}

@Suite struct HookPoolStressTests {
    @Test func backgroundAndUrgentJobsFromManyTasksAreAllRunOnce() async throws {
        let folder = try HooksFolder([
            "bg.lua": "on_record_create('posts', function(e) end)",
            "fg.lua": "on_record_update('posts', function(e) end, {async = false})\nbefore_record_create('posts', function(e) end)",
        ])
        defer { folder.remove() }
        let pool = HookPool(try folder.load(states: 2))
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                group.addTask {
                    switch i % 3 {
                    case 0: _ = await pool.deliver(event(), to: [0], urgent: false)
                    case 1: _ = await pool.deliver(event(.updated), to: [1], urgent: true)
                    default: _ = await pool.runBefore(.created, collection: "posts") { event() }
                    }
                }
            }
        }
        await pool.waitUntilIdle()
        #expect(pool.catalog.statsSnapshot().map(\.calls) == [667, 667, 666])
        await pool.shutdown()
    }
}
