import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Testing

@Suite struct ServerHookTests {
    static let recorder = """
        on_any_event(function(e)
          log.info("event", {type = e.type, id = e.record_id, title = e.data.title,
                             old = e.old_data and e.old_data.title or "none", collection = e.collection_name})
        end)
        """

    @Test func afterHookFiresOncePerWriteWithDataAndOldData() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["recorder.lua": Self.recorder], logs: logs) { client, server in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"One"}"#)
            let id = try #require(created.body?["id"]?.string)
            _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Two"}"#)
            _ = try await client.send(.delete, "/api/v1/collections/posts/records/\(id)")
            await server.waitForDeliveries()
            let events = logs.lines("event").map { [$0.metadata["type"], $0.metadata["title"], $0.metadata["old"], $0.metadata["id"]] }
            #expect(events == [["record.created", "One", "none", id], ["record.updated", "Two", "One", id], ["record.deleted", "Two", "Two", id]])
            let listing = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let files)? = listing.body, case .array(let handlers)? = files.first?["handlers"] else {
                Issue.record("no listing"); return
            }
            #expect(handlers.first?["calls"] == 3 && handlers.first?["errors"] == 0)
        }
    }

    /// SPEC section 6: one write has one event id, the same for its before- and after-hooks, on
    /// every write kind and on every attempt.
    @Test(arguments: ["create", "update", "delete"])
    func beforeAndAfterHooksOfOneWriteSeeOneEventID(kind: String) async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["ids.lua": """
            before_record_create("posts", function(e) log.info("before", {id = e.id, type = e.type}) end)
            before_record_update("posts", function(e) log.info("before", {id = e.id, type = e.type}) end)
            before_record_delete("posts", function(e) log.info("before", {id = e.id, type = e.type}) end)
            on_any_event(function(e)
              log.info("after", {id = e.id, type = e.type, attempt = e.attempt})
              if e.attempt == 1 then error("once more") end
            end, {retries = 1})
            """], logs: logs, configure: { $0.retrySchedule = [.milliseconds(1)] }) { client, server in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"One"}"#)
            let id = try #require(created.body?["id"]?.string)
            switch kind {
            case "update": _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Two"}"#)
            case "delete": _ = try await client.send(.delete, "/api/v1/collections/posts/records/\(id)")
            default: break
            }
            #expect(await eventually { logs.lines("after").count == (kind == "create" ? 2 : 4) })
            await server.waitForDeliveries()
            let type = "record." + (kind == "create" ? "created" : kind == "update" ? "updated" : "deleted")
            let before = logs.lines("before").filter { $0.metadata["type"] == type }.compactMap { $0.metadata["id"] }
            let after = logs.lines("after").filter { $0.metadata["type"] == type }.compactMap { $0.metadata["id"] }
            #expect(before.count == 1)
            #expect(after.count == 2) // the first attempt and its retry
            #expect(Set(before + after).count == 1)
            // Another write has another id.
            let others = logs.lines("before").filter { $0.metadata["type"] != type }.compactMap { $0.metadata["id"] }
            #expect(others.allSatisfy { !before.contains($0) })
        }
    }

    @Test func failingLoopingAndMemoryBombingAfterHooksNeverAffectTheWrite() async throws {
        let limits = LuaLimits(instructions: 1_000_000, wallClock: .seconds(5), memoryBytes: 32 << 20)
        try await withServer(hooks: ["bad.lua": """
            on_record_create("posts", function(e) error("boom") end)
            on_record_create("posts", function(e) while true do end end, {async = false})
            on_record_create("posts", function(e) local s = string.rep("x", 2^30) end, {async = false})
            """], limits: limits) { client, server in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"kept"}"#)
            #expect(created.status == .created)
            let id = try #require(created.body?["id"]?.string)
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").body?["title"] == "kept")
            await server.waitForDeliveries()
            let stats = server.hooks.catalog.statsSnapshot()
            #expect(stats.map(\.errors) == [1, 1, 1])
            #expect(stats[1].lastError?.contains("hook exceeded its time budget") == true)
            #expect(stats[2].lastError?.contains("not enough memory") == true)
        }
    }

    @Test func beforeHookChangeIsStoredAndReturned() async throws {
        try await withServer(hooks: ["validate.lua": """
            before_record_create("posts", function(e) e.data.slug = string.lower(e.data.title); e.data.id = "forged" end)
            before_record_update("posts", function(e) e.data.edits = (e.old_data.edits or 0) + 1 end)
            """]) { client, _ in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"Hello"}"#)
            #expect(created.status == .created && created.body?["slug"] == "hello")
            let id = try #require(created.body?["id"]?.string)
            #expect(id != "forged", "system fields stay the store's")
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").body?["slug"] == "hello")
            let patched = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Again"}"#)
            #expect(patched.body?["edits"] == 1 && patched.body?["slug"] == "hello")
        }
    }

    @Test func refusalStoresNothingAndEmitsNoEvent() async throws {
        let logs = LogCapture()
        try await withServer(hooks: [
            "a_validate.lua": """
                before_record_create("posts", function(e) if not e.data.title then reject("title is required") end end)
                before_record_delete("posts", function(e) if e.data.locked then reject("locked", 403) end end)
                """,
            "b_recorder.lua": Self.recorder,
        ], logs: logs) { client, server in
            try await client.createCollection("posts")
            let refused = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"body":"no title"}"#)
            #expect(refused.status == .unprocessableContent && refused.body == ["error": "title is required"])
            #expect(try await client.send(.get, "/api/v1/collections/posts/records").body?["total_items"] == 0)
            let locked = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"t","locked":true}"#)
            let id = try #require(locked.body?["id"]?.string)
            let delete = try await client.send(.delete, "/api/v1/collections/posts/records/\(id)")
            #expect(delete.status == .forbidden && delete.body == ["error": "locked"])
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").status == .ok)
            await server.waitForDeliveries()
            #expect(logs.lines("event").map { $0.metadata["type"] } == ["record.created"], "only the stored write emitted an event")
        }
    }

    @Test func beforeHookErrorIs500WithoutDetails() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["secret.lua": "before_record_create('posts', function(e) error('db password is hunter2') end)"], logs: logs) { client, _ in
            try await client.createCollection("posts")
            let response = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"x"}"#)
            #expect(response.status == .internalServerError && response.body == ["error": "hook failed"])
            #expect(try await client.send(.get, "/api/v1/collections/posts/records").body?["total_items"] == 0)
            let logged = try #require(logs.lines("hook failed").first)
            #expect(logged.metadata["file"] == "hooks/secret.lua" && logged.metadata["error"]?.contains("hunter2") == true)
        }
    }

    @Test func synchronousAfterHookHoldsTheResponse() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["sync.lua": """
            on_record_create("posts", function(e)
              local t = os.clock() while os.clock() - t < 0.1 do end
              log.info("sync done")
            end, {async = false})
            """], logs: logs) { client, _ in
            try await client.createCollection("posts")
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: "{}").status == .created)
            #expect(logs.lines("sync done").count == 1, "the handler ran before the response came back")
        }
    }

    @Test func hooksEndpointListsFilesAndFailures() async throws {
        try await withServer(hooks: ["broken.lua": "x = = 1", "ok.lua": "function on_post(e) end\non_record_create('posts', on_post)"]) { client, _ in
            let listing = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let files)? = listing.body else { Issue.record("no listing"); return }
            #expect(files.map { $0["status"] } == ["failed", "loaded"])
            #expect(files[0]["error"]?.string?.hasPrefix("hooks/broken.lua:1:") == true)
            #expect(files[1]["functions"] == ["on_post"])
        }
    }
}
