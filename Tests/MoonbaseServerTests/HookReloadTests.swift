import Foundation
import HookHost
import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// Reload without a restart (SPEC section 13), through `POST /api/v1/hooks/reload`, in process.
@Suite struct HookReloadTests {
    static func stamp(_ value: String) -> String {
        "before_record_create('posts', function(e) e.data.stamp = '\(value)' end, {name = 'stamp'})"
    }

    /// Writes `source` as hook file `name` of the server's folder (nil: deletes it).
    static func write(_ name: String, _ source: String?, in server: MoonbaseServer) throws {
        let path = server.hooks.directory.path + "/" + name
        if let source {
            try source.write(toFile: path, atomically: true, encoding: .utf8)
        } else {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    static func create(_ client: some TestClientProtocol, _ json: String = #"{"title":"x"}"#) async throws -> JSONValue? {
        let created = try await client.send(.post, "/api/v1/collections/posts/records", json: json)
        #expect(created.status == .created)
        return created.body
    }

    static func files(_ listing: JSONValue?) -> [JSONValue] {
        if case .array(let files)? = listing { return files }
        Issue.record("not a listing: \(String(describing: listing))")
        return []
    }

    @Test func aReloadAddsChangesAndRemovesHandlersAndNewWritesSeeThem() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["a.lua": Self.stamp("v1")], logs: logs) { client, server in
            try await client.createCollection("posts")
            #expect(try await Self.create(client)?["stamp"] == "v1")
            let before = Self.files(try await client.send(.get, "/api/v1/hooks").body)
            #expect(before.count == 1 && before[0]["generation"] == 1 && before[0]["loaded_at"]?.string != nil)

            try Self.write("a.lua", Self.stamp("v2"), in: server)
            try Self.write("b.lua", "before_record_create('posts', function(e) e.data.seen_by_b = true end)", in: server)
            let reloaded = try await client.send(.post, "/api/v1/hooks/reload")
            #expect(reloaded.status == .ok)
            let files = Self.files(reloaded.body)
            #expect(files.map { $0["file"]?.string } == ["hooks/a.lua", "hooks/b.lua"])
            #expect(files.allSatisfy { $0["generation"] == 2 && $0["loaded_at"] == files[0]["loaded_at"] && $0["last_reload"] == nil })
            let second = try await Self.create(client)
            #expect(second?["stamp"] == "v2" && second?["seen_by_b"] == true)
            let line = try #require(logs.lines("hooks reloaded").last)
            #expect(line.metadata["by"] == "api" && line.metadata["generation"] == "2" && line.metadata["added"] == "hooks/b.lua"
                && line.metadata["changed"] == "hooks/a.lua" && line.metadata["removed"] == "" && line.metadata["failed"] == "")

            try Self.write("a.lua", nil, in: server)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            let third = try await Self.create(client)
            #expect(third?["stamp"] == nil && third?["seen_by_b"] == true)
            #expect(logs.lines("hooks reloaded").last?.metadata["removed"] == "hooks/a.lua")
            #expect(Self.files(try await client.send(.get, "/api/v1/hooks").body).map { $0["generation"] } == [3])
        }
    }

    @Test func aRefusedReloadKeepsTheOldGenerationServing() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["a.lua": Self.stamp("v1"), "b.lua": "on_record_create('posts', function() end)"], logs: logs) { client, server in
            try await client.createCollection("posts")
            try Self.write("a.lua", "before_record_create('posts', function(e)\n  e.data.stamp = 'v2'\nend end", in: server)
            try Self.write("b.lua", "-- emptied", in: server)
            let refused = try await client.send(.post, "/api/v1/hooks/reload")
            #expect(refused.status == .conflict)
            let error = try #require(refused.body?["error"]?.string)
            #expect(error.contains("hooks/a.lua:3"), "\(error)")
            #expect(try await Self.create(client)?["stamp"] == "v1")

            let files = Self.files(try await client.send(.get, "/api/v1/hooks").body)
            #expect(files.allSatisfy { $0["generation"] == 1 && $0["status"] == "loaded" })
            let a = try #require(files.first { $0["file"] == "hooks/a.lua" })
            #expect(a["last_reload"]?["by"] == "api" && a["last_reload"]?["refused"] == true && a["last_reload"]?["error"]?.string == error)
            #expect(a["last_reload"]?["at"]?.string != nil)
            #expect(files.first { $0["file"] == "hooks/b.lua" }?["last_reload"] == nil)
            #expect(files.first { $0["file"] == "hooks/b.lua" }?["handlers"].map { if case .array(let h) = $0 { h.count } else { -1 } } == 1)
            let line = try #require(logs.lines("hook reload refused: the current hooks keep serving").last)
            #expect(line.metadata["file"] == "hooks/a.lua" && line.metadata["by"] == "api")

            try Self.write("a.lua", Self.stamp("v2"), in: server)
            let fixed = try await client.send(.post, "/api/v1/hooks/reload")
            #expect(fixed.status == .ok && Self.files(fixed.body).allSatisfy { $0["generation"] == 2 && $0["last_reload"] == nil })
            #expect(try await Self.create(client)?["stamp"] == "v2")
        }
    }

    @Test func aNewBrokenFileIsFailedAndTheOthersReload() async throws {
        try await withServer(hooks: ["a.lua": Self.stamp("v1")]) { client, server in
            try await client.createCollection("posts")
            try Self.write("a.lua", Self.stamp("v2"), in: server)
            try Self.write("broken.lua", "on_record_create('posts', function() end", in: server)
            try Self.write("unknown.lua", "on_record_craete('posts', function() end)", in: server)
            let reloaded = try await client.send(.post, "/api/v1/hooks/reload")
            #expect(reloaded.status == .ok)
            let files = Self.files(reloaded.body)
            #expect(files.map { $0["status"]?.string } == ["loaded", "failed", "failed"])
            #expect(files[1]["error"]?.string?.contains("hooks/broken.lua:1") == true)
            #expect(try await Self.create(client)?["stamp"] == "v2")
            // Still broken: it was not loaded, so it blocks nothing either.
            try Self.write("a.lua", Self.stamp("v3"), in: server)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            #expect(try await Self.create(client)?["stamp"] == "v3")
        }
    }

    @Test func theReloadEndpointNeedsTheToken() async throws {
        let refused: [HTTPFields] = [[:], [.authorization: "Bearer wrong"], [.authorization: token]]
        try await withServer(hooks: ["a.lua": Self.stamp("v1")]) { client, server in
            for headers in refused {
                let answer = try await client.send(.post, "/api/v1/hooks/reload", headers: headers)
                #expect(answer.status == .unauthorized)
            }
            #expect(try await client.send(.get, "/api/v1/hooks/reload").status == .methodNotAllowed)
            #expect(server.hooks.current.number == 1)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            #expect(server.hooks.current.number == 2)
        }
    }

    @Test func concurrentReloadsRunOneAfterAnother() async throws {
        try await withServer(hooks: ["a.lua": Self.stamp("v1")]) { client, server in
            let numbers = await withTaskGroup(of: Int?.self) { group in
                for _ in 0..<4 {
                    group.addTask { if case .success(let generation) = await server.reloadHooks(by: .api) { generation.number } else { nil } }
                }
                return await group.reduce(into: [Int?]()) { $0.append($1) }
            }
            #expect(numbers.compactMap { $0 }.sorted() == [2, 3, 4, 5])
            let listing = try await client.send(.get, "/api/v1/hooks")
            #expect(Self.files(listing.body).first?["generation"] == 5)
        }
    }

    /// A before-hook and a route, each waiting on a slow `http` call when the reload comes,
    /// finish in the generation they started in; what starts after the swap runs in the new
    /// one; the old generation is freed once they are done.
    @Test func inFlightHandlersFinishInTheirOldGeneration() async throws {
        try await withTestServer { port in
            let source = { @Sendable (version: String) in """
                before_record_create('posts', function(e)
                  if e.data.slow then assert(http.get("http://127.0.0.1:\(port)/pause/700")) end
                  e.data.stamp = '\(version)'
                end)
                route("GET", "/version", function(req)
                  if req.query.slow then assert(http.get("http://127.0.0.1:\(port)/pause/700")) end
                  return {version = '\(version)'}
                end)
                """ }
            try await withServer(hooks: ["a.lua": source("old")]) { client, server in
                try await client.createCollection("posts")
                weak let old = server.hooks.current
                async let write = client.send(.post, "/api/v1/collections/posts/records", json: #"{"slow":true}"#)
                async let routed = client.send(.get, "/version?slow=1")
                try await Task.sleep(for: .milliseconds(250)) // both wait on the slow endpoint now
                try Self.write("a.lua", source("new"), in: server)
                #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
                #expect(try await Self.create(client)?["stamp"] == "new")
                #expect(try await client.send(.get, "/version").body?["version"] == "new")
                #expect(old != nil, "the old generation still runs its handlers")

                let (written, answered) = try await (write, routed)
                #expect(written.status == .created && written.body?["stamp"] == "old")
                #expect(answered.status == .ok && answered.body?["version"] == "old")
                #expect(await eventually { old == nil }, "the old generation is freed once its handlers are done")
            }
        }
    }

    @Test func routesFollowTheCurrentGeneration() async throws {
        try await withServer(hooks: ["r.lua": "route('GET', '/one', function() return {n = 1} end, {public = true})"]) { client, server in
            #expect(try await client.send(.get, "/one", headers: [:]).body?["n"] == 1)
            #expect(try await client.send(.get, "/two", headers: [:]).status == .notFound)
            try Self.write("r.lua", "route('GET', '/two/{n}', function(req) return {n = req.params.n} end)", in: server)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            #expect(try await client.send(.get, "/one", headers: [:]).status == .notFound)
            #expect(try await client.send(.get, "/two/2", headers: [:]).status == .unauthorized)
            #expect(try await client.send(.get, "/two/a%20b").body?["n"] == "a b")
            #expect(try await client.send(.post, "/two/2").status == .methodNotAllowed)
        }
    }

    /// A delivery waiting for its retry when its handler is removed ends dead at once, and
    /// `on_hook_failed` (still loaded) sees it; a named handler's pending delivery survives an
    /// edit of its file.
    @Test func aPendingDeliveryOfARemovedHandlerEndsDead() async throws {
        let logs = LogCapture()
        let clock = ManualClock()
        let flaky = "on_record_create('posts', function(e) error('down') end, {name = 'flaky', retries = 5})"
        let kept = "on_record_create('posts', function(e) log.info('kept ran', {attempt = e.attempt}) if e.attempt == 1 then error('once') end end, {name = 'kept', retries = 5})"
        try await withServer(hooks: [
            "a.lua": flaky, "b.lua": kept,
            "failed.lua": "on_hook_failed(function(e) log.info('gave up', {handler = e.delivery.handler, error = e.delivery.last_error}) end)",
        ], logs: logs, configure: {
            $0.clock = clock
            $0.retrySchedule = [.seconds(600)]
        }) { client, server in
            try await client.createCollection("posts")
            _ = try await Self.create(client)
            #expect(try await eventually {
                try await client.send(.get, "/api/v1/hooks/deliveries?status=failed").body.map { Self.files($0).count } == 2
            })
            try Self.write("a.lua", "-- flaky is gone", in: server)
            try Self.write("b.lua", "-- an edit above the named handler\n" + kept, in: server)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            #expect(await eventually { logs.lines("gave up").count == 1 })
            let dead = Self.files(try await client.send(.get, "/api/v1/hooks/deliveries?status=dead").body)
            #expect(dead.count == 1 && dead.first?["last_error"]?.string?.contains("handler no longer loaded") == true)
            #expect(logs.lines("gave up").first?.metadata["error"]?.contains("handler no longer loaded") == true)
            // The kept handler's delivery still waits for its time, and runs in the new generation then.
            clock.advance(by: 600_000)
            #expect(await eventually { logs.lines("kept ran").count == 2 })
            await server.waitForDeliveries()
            let succeeded = Self.files(try await client.send(.get, "/api/v1/hooks/deliveries?status=succeeded").body)
            #expect(succeeded.map { $0["handler"]?.string?.contains("kept") } == [true])
        }
    }
}

extension HookReloadTests {
    /// A handler's series continue across reloads: each generation's calls are counted once,
    /// even those of a generation freed before any scrape.
    @Test func metricsCountCallsAcrossGenerations() async throws {
        let counted = "on_record_create('posts', function(e) end, {name = 'counted'})\n"
        try await withServer(hooks: ["a.lua": counted + Self.stamp("v1")]) { client, server in
            try await client.createCollection("posts")
            for version in ["v2", "v3"] {
                _ = try await Self.create(client)
                await server.waitForDeliveries()
                try Self.write("a.lua", counted + Self.stamp(version), in: server)
                #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            }
            _ = try await Self.create(client)
            await server.waitForDeliveries()
            let scraped = try await client.scrape()
            #expect(scraped.value("moonbase_hook_handler_calls_total", ["handler": "counted", "file": "hooks/a.lua"]) == 3)
            #expect(scraped.value("moonbase_hook_handler_calls_total", ["handler": "stamp", "file": "hooks/a.lua"]) == 3)
            #expect(scraped.value("moonbase_hook_handler_duration_seconds_count", ["handler": "counted", "file": "hooks/a.lua"]) == 3)
        }
    }
}
