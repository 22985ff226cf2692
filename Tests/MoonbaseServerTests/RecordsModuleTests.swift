import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// The `records` module: hooks read and write records through the REST API's write path.
@Suite struct RecordsModuleTests {
    @Test func hooksReadAndWriteRecordsAndTheirWritesFireHooks() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["audit.lua": """
            on_record_create("posts", function(e)
              local entry, err = records.create("audit", {post = e.record_id, title = e.data.title})
              assert(entry, err)
              local again = records.get("audit", entry.id)
              assert(again.title == e.data.title and again.stamped == true, "the before-hook of audit ran")
              local page = records.list("audit", {sort = "-created", per_page = 5})
              local updated = records.update("audit", entry.id, {seen = true})
              log.info("audited", {total = tostring(page.total_items), first = page.items[1].id, seen = tostring(updated.seen)})
              assert(records.delete("audit", entry.id) == true)
              local gone, missing = records.get("audit", entry.id)
              log.info("gone", {value = tostring(gone), err = missing})
            end, {async = false})
            before_record_create("audit", function(e) e.data.stamped = true end)
            on_record_create("audit", function(e) log.info("audit hook", {post = e.data.post}) end, {async = false})
            """], logs: logs) { client, server in
            try await client.createCollection("posts")
            try await client.createCollection("audit")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"Hello"}"#)
            let id = try #require(created.body?["id"]?.string)
            await server.waitForDeliveries()
            #expect(server.hooks.catalog.statsSnapshot().map(\.errors) == [0, 0, 0], "\(server.hooks.catalog.statsSnapshot().map(\.lastError))")
            let audited = try #require(logs.lines("audited").first)
            #expect(audited.metadata["total"] == "1" && audited.metadata["seen"] == "true")
            #expect(logs.lines("audit hook").map { $0.metadata["post"] } == [id], "the hook's write fired the audit collection's hooks")
            let gone = try #require(logs.lines("gone").first)
            #expect(gone.metadata["value"] == "nil" && gone.metadata["err"]?.contains("not found") == true)
            let remaining = try await client.send(.get, "/api/v1/collections/audit/records")
            #expect(remaining.body?["total_items"] == 0)
        }
    }

    @Test func aRefusalOrABadWriteIsNilAndAMessage() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["refuse.lua": """
            before_record_create("audit", function(e) if e.data.title == "secret" then reject("no secrets here", 403) end end)
            on_record_create("posts", function(e)
              local refused, why = records.create("audit", {title = "secret"})
              local missing, nocoll = records.create("nowhere", {title = "x"})
              local badname, invalid = records.get("audit", "no-such-id")
              log.info("outcomes", {refused = tostring(refused), why = why, missing = tostring(missing), nocoll = nocoll, invalid = invalid})
            end, {async = false})
            on_record_update("posts", function(e) records.create("audit") end)
            """], logs: logs) { client, server in
            try await client.createCollection("posts")
            try await client.createCollection("audit")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"Hello"}"#)
            let id = try #require(created.body?["id"]?.string)
            _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Again"}"#)
            await server.waitForDeliveries()
            let line = try #require(logs.lines("outcomes").first)
            #expect(line.metadata["refused"] == "nil" && line.metadata["why"] == "no secrets here")
            #expect(line.metadata["missing"] == "nil" && line.metadata["nocoll"]?.contains("nowhere") == true)
            #expect(line.metadata["invalid"]?.contains("not found") == true)
            #expect(try await client.send(.get, "/api/v1/collections/audit/records").body?["total_items"] == 0, "nothing refused was stored")
            let stats = server.hooks.catalog.statsSnapshot()
            #expect(stats[1].errors == 0 && stats[2].errors == 1)
            #expect(stats[2].lastError?.contains("records.create: bad argument #2 (data table expected, got no value)") == true)
        }
    }

    @Test func theDepthLimitEndsAHookLoopThroughBeforeHooks() async throws {
        try await withServer(hooks: ["loop.lua": """
            before_record_create("echo", function(e) assert(records.create("echo", {n = (e.data.n or 0) + 1})) end)
            """]) { client, server in
            try await client.createCollection("echo")
            let created = try await client.send(.post, "/api/v1/collections/echo/records", json: "{}")
            #expect(created.status == .internalServerError, "the loop ends the outermost write with the hook's failure")
            let stats = server.hooks.catalog.statsSnapshot()
            #expect(stats[0].lastError?.contains("hook writes nest too deep (limit 3)") == true)
            #expect(try await client.send(.get, "/api/v1/collections/echo/records").body?["total_items"] == 0)
        }
    }

    @Test func theDepthLimitEndsAHookLoopThroughAfterHooksAndTheListingShowsIt() async throws {
        try await withServer(hooks: ["loop.lua": """
            on_record_create("echo", function(e) assert(records.create("echo", {n = (e.data.n or 0) + 1})) end)
            """]) { client, server in
            try await client.createCollection("echo")
            _ = try await client.send(.post, "/api/v1/collections/echo/records", json: #"{"n":0}"#)
            await server.waitForDeliveries()
            #expect(try await client.send(.get, "/api/v1/collections/echo/records").body?["total_items"] == 4,
                    "the outside write and three hook-made writes")
            let listing = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let files)? = listing.body, case .array(let handlers)? = files.first?["handlers"] else {
                Issue.record("no listing"); return
            }
            #expect(handlers.first?["calls"] == 4 && handlers.first?["errors"] == 1)
            #expect(handlers.first?["last_error"]?.string?.contains("hook writes nest too deep (limit 3)") == true)
        }
    }
}
