import Foundation
import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Synchronization
import Testing

@Suite struct DeliveryTests {
    @Test func committedWritesHaveOneDeliveryPerHandlerAndRefusedOnesNone() async throws {
        try await withServer(hooks: [
            "a.lua": "before_record_create('posts', function(e) if e.data.refuse then reject('no') end end)",
            "b.lua": "on_record_create('posts', function(e) end)\non_any_event(function(e) end)\non_record_update('posts', function(e) end)",
        ]) { client, server in
            try await client.createCollection("posts")
            for n in 1...20 {
                _ = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":\#(n)}"#)
            }
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"refuse":true}"#).status == .unprocessableContent)
            await server.waitForDeliveries()
            let listing = try await client.send(.get, "/api/v1/hooks/deliveries?limit=1000")
            guard case .array(let items)? = listing.body else { Issue.record("no list"); return }
            #expect(items.count == 40, "20 writes × 2 matching after-handlers, none for the refused write")
            #expect(items.allSatisfy { $0["status"] == "succeeded" && $0["attempts"] == 1 })
            #expect(Set(items.compactMap { $0["event_id"]?.string }).count == 20)
            let filtered = try await client.send(.get, "/api/v1/hooks/deliveries?collection=nope")
            #expect(filtered.body == [])
            #expect(try await client.send(.get, "/api/v1/hooks/deliveries?status=bogus").status == .badRequest)
        }
    }

    @Test func retriesFollowTheScheduleThenDeadFiresOnHookFailedOnce() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["flaky.lua": """
            on_record_create("posts", function(e)
              log.info("attempt", {n = e.attempt, id = e.id})
              error("downstream is down")
            end, {name = "flaky", retries = 2})
            on_hook_failed(function(e)
              log.info("gave up", {handler = e.delivery.handler, attempts = e.delivery.attempts, record = e.event.record_id})
            end)
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(1), .seconds(60)]
            }) { client, server in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"x"}"#)
            #expect(created.status == .created, "a failing after-hook never affects the write")
            let recordID = try #require(created.body?["id"]?.string)
            func delivery() async throws -> JSONValue? {
                guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?hook=flaky").body else { return nil }
                return items.first
            }
            #expect(try await eventually { try await delivery()?["status"] == "failed" })
            let first = try #require(try await delivery())
            #expect(first["attempts"] == 1 && first["last_error"]?.string?.contains("hooks/flaky.lua:3: downstream is down") == true)
            #expect(first["next_attempt_at"]?.string != nil)

            clock.advance(by: 999)
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await delivery()?["attempts"] == 1, "not before its time")
            clock.advance(by: 1)
            #expect(try await eventually { try await delivery()?["attempts"] == 2 })
            clock.advance(by: 59_999)
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await delivery()?["attempts"] == 2)
            clock.advance(by: 1)
            #expect(try await eventually { try await delivery()?["status"] == "dead" })
            #expect(await eventually { logs.lines("gave up").count == 1 })
            await server.waitForDeliveries()
            #expect(logs.lines("attempt").map { $0.metadata["n"] } == ["1", "2", "3"])
            #expect(Set(logs.lines("attempt").compactMap { $0.metadata["id"] }).count == 1, "the same event id on every attempt")
            let gaveUp = try #require(logs.lines("gave up").first)
            #expect(gaveUp.metadata["attempts"] == "3" && gaveUp.metadata["record"] == recordID)

            let id = try #require(try await delivery()?["id"].map { $0.serializedString() })
            let detail = try await client.send(.get, "/api/v1/hooks/deliveries/\(id)")
            guard case .array(let attempts)? = detail.body?["attempt_log"] else { Issue.record("no attempts"); return }
            #expect(attempts.map { $0["attempt"] } == [1, 2, 3] && attempts.allSatisfy { $0["status"] == "failed" })

            let retried = try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry")
            #expect(retried.status == .accepted)
            #expect(try await eventually { try await delivery()?["attempts"] == 4 })
            #expect(try await eventually { try await delivery()?["status"] == "dead" })
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/999999/retry").status == .notFound)
        }
    }

    /// `--no-hook-delivery`: events are stored with their writes, pending, and no handler runs.
    @Test func withoutDeliveryEventsAreStoredAndNotDelivered() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["count.lua": "on_record_create('posts', function(e) log.info('delivered') end)"], logs: logs,
                             configure: { $0.hookDeliveryEnabled = false }) { client, _ in
            try await client.createCollection("posts")
            for _ in 0..<3 { #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: "{}").status == .created) }
            let pending = try await client.send(.get, "/api/v1/hooks/deliveries?status=pending")
            guard case .array(let items)? = pending.body else { Issue.record("no deliveries"); return }
            #expect(items.count == 3)
            try await Task.sleep(for: .milliseconds(100))
            #expect(logs.lines("delivered").isEmpty)
        }
    }

    /// A dead create's retry must not write its old price over a later update that was delivered:
    /// 409 naming the newer delivery, unless forced, and then the handler is told.
    @Test func retryOfStaleDataIsRefusedUnlessForcedAndThenFlagged() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["search.lua": """
            on_any_event(function(e)
              log.info("indexed", {price = e.data.price, redelivered = tostring(e.redelivered == true)})
              if e.type == "record.created" and not e.redelivered then error("index down") end
            end, {name = "index"})
            """], logs: logs) { client, server in
            try await client.createCollection("products")
            let created = try await client.send(.post, "/api/v1/collections/products/records", json: #"{"price":1}"#)
            let id = try #require(created.body?["id"]?.string)
            await server.waitForDeliveries()
            _ = try await client.send(.patch, "/api/v1/collections/products/records/\(id)", json: #"{"price":2}"#)
            await server.waitForDeliveries()
            let list = try await client.send(.get, "/api/v1/hooks/deliveries?collection=products")
            guard case .array(let items)? = list.body else { Issue.record("no deliveries"); return }
            let dead = try #require(items.first { $0["status"] == "dead" }?["id"]).serializedString()
            let newer = try #require(items.first { $0["status"] == "succeeded" }?["id"]).serializedString()

            let refused = try await client.send(.post, "/api/v1/hooks/deliveries/\(dead)/retry")
            #expect(refused.status == .conflict)
            #expect(refused.body?["error"]?.string?.contains("delivery \(newer)") == true)
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/\(dead)/retry?force=maybe").status == .badRequest)
            #expect(logs.lines("indexed").map { $0.metadata["price"] } == ["1", "2"], "nothing sent again")

            let forced = try await client.send(.post, "/api/v1/hooks/deliveries/\(dead)/retry?force=true")
            #expect(forced.status == .accepted && forced.body?["redelivered"] == true)
            #expect(await eventually { logs.lines("indexed").count == 3 })
            await server.waitForDeliveries()
            #expect(logs.lines("indexed").last?.metadata["redelivered"] == "true")
            #expect(logs.lines("indexed").prefix(2).allSatisfy { $0.metadata["redelivered"] == "false" })
            #expect(try await client.send(.get, "/api/v1/hooks/deliveries/\(dead)").body?["status"] == "succeeded")
        }
    }

    @Test func retryOfADeliveryWaitingForItsRetryRunsItOnceNow() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["flaky.lua": """
            on_record_create("posts", function(e)
              log.info("attempt", {n = e.attempt})
              if e.attempt == 1 then error("not yet") end
            end, {name = "flaky", retries = 3})
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(60)]
            }) { client, server in
            try await client.createCollection("posts")
            _ = try await client.send(.post, "/api/v1/collections/posts/records", json: "{}")
            func delivery() async throws -> JSONValue? {
                guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?hook=flaky").body else { return nil }
                return items.first
            }
            #expect(try await eventually { try await delivery()?["status"] == "failed" })
            let id = try #require(try await delivery()?["id"].map { $0.serializedString() })
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry").status == .accepted)
            #expect(try await eventually { try await delivery()?["status"] == "succeeded" })
            clock.advance(by: 60_000) // the retry it was waiting for is gone
            try await Task.sleep(for: .milliseconds(100))
            await server.waitForDeliveries()
            #expect(logs.lines("attempt").map { $0.metadata["n"] } == ["1", "2"])
            #expect(try await delivery()?["attempts"] == 2)
        }
    }

    @Test func retryOfARunningOrSucceededDeliveryIsRefused() async throws {
        try await withServer(hooks: ["slow.lua": """
            on_record_create("posts", function(e) local t = os.clock() while os.clock() - t < 0.3 do end end, {name = "slow"})
            """]) { client, server in
            try await client.createCollection("posts")
            _ = try await client.send(.post, "/api/v1/collections/posts/records", json: "{}")
            var runningID: String?
            _ = try await eventually {
                guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?status=running").body else { return false }
                runningID = items.first?["id"].map { $0.serializedString() }
                return runningID != nil
            }
            let id = try #require(runningID)
            let conflict = try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry")
            #expect(conflict.status == .conflict && conflict.body?["error"]?.string?.contains("running") == true)
            await server.waitForDeliveries()
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry").status == .conflict, "succeeded")
        }
    }

    @Test func deliveriesOfOneRecordFollowCommitOrder() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["order.lua": """
            on_record_update("posts", function(e)
              local t = os.clock() while os.clock() - t < 0.002 do end
              log.info("seen", {n = e.data.n})
            end)
            """], logs: logs) { client, server in
            try await client.createCollection("posts")
            let id = try #require(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":0}"#).body?["id"]?.string)
            for n in 1...30 {
                _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"n":\#(n)}"#)
            }
            await server.waitForDeliveries()
            #expect(logs.lines("seen").compactMap { $0.metadata["n"].flatMap { Int($0) } } == Array(1...30))
        }
    }

    @Test func aBacklogLongerThanMemoryHoldsWaitsInTheStoreAndKeepsCommitOrder() async throws {
        let logs = LogCapture()
        try await withTestServer { port in
            // Each delivery waits 100 ms of wall-clock time (CPU time would pass faster while other
            // tests run): far slower than the writes, so the backlog fills up.
            try await withServer(hooks: ["slow.lua": """
                local function slow(e)
                  assert(http.get("http://127.0.0.1:\(port)/pause/100"))
                  log.info("seen", {record = e.record_id, n = e.data.n, type = e.type})
                end
                on_record_create("posts", slow)
                on_record_update("posts", slow)
                """], logs: logs, configure: { $0.deliveryBacklog = 4 }) { client, server in
                try await client.createCollection("posts")
                var ids: [String] = []
                for _ in 1...3 {
                    ids.append(try #require(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":0}"#).body?["id"]?.string))
                }
                for n in 1...10 {
                    for id in ids { _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"n":\#(n)}"#) }
                }
                await server.waitForDeliveries()
                for id in ids {
                    #expect(logs.lines("seen").filter { $0.metadata["record"] == id }.compactMap { $0.metadata["n"].flatMap { Int($0) } } == Array(0...10),
                            "every event once, in commit order")
                }
                #expect(server.peakDeliveryBacklog == 4, "33 events, at most 4 of them in memory at once")
                guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?limit=1000").body else { Issue.record("no list"); return }
                #expect(items.count == 33 && items.allSatisfy { $0["status"] == "succeeded" })
            }
        }
    }

    @Test func aFailingDeliveryHoldsBackOnlyItsHandlersLaterOnesForThatRecord() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["lanes.lua": """
            on_record_update("posts", function(e)
              log.info("flaky", {n = e.data.n, attempt = e.attempt, record = e.record_id})
              if e.data.n == 1 and e.attempt == 1 then error("not yet") end
            end, {name = "flaky", retries = 1})
            on_record_update("posts", function(e) log.info("steady", {n = e.data.n, record = e.record_id}) end, {name = "steady"})
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(60)]
            }) { client, server in
            try await client.createCollection("posts")
            let first = try #require(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":0}"#).body?["id"]?.string)
            let other = try #require(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":0}"#).body?["id"]?.string)
            for n in 1...3 {
                _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(first)", json: #"{"n":\#(n)}"#)
            }
            _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(other)", json: #"{"n":7}"#)
            await server.waitForDeliveries()
            func seen(_ handler: String, _ record: String) -> [String] {
                logs.lines(handler).filter { $0.metadata["record"] == record }.compactMap { $0.metadata["n"] }
            }
            #expect(seen("steady", first) == ["1", "2", "3"], "the other handler is not held back")
            #expect(seen("flaky", first) == ["1"], "its later deliveries for the record wait for the retry")
            #expect(seen("flaky", other) == ["7"], "other records are not held back")
            clock.advance(by: 60_000)
            #expect(await eventually { seen("flaky", first).count == 4 })
            await server.waitForDeliveries()
            #expect(seen("flaky", first) == ["1", "1", "2", "3"], "then all of them, in commit order")
            _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(first)", json: #"{"n":4}"#)
            await server.waitForDeliveries()
            #expect(seen("flaky", first) == ["1", "1", "2", "3", "4"] && seen("steady", first) == ["1", "2", "3", "4"])
            guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?limit=1000").body else { Issue.record("no list"); return }
            #expect(items.count == 10 && items.allSatisfy { $0["status"] == "succeeded" }, "5 updates × 2 handlers")
        }
    }

    @Test func aRestartTakesUpAFailedDeliveryAtItsRetryTimeAndKeepsTheOnesBehindIt() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("moonbase-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let hook = ["flaky.lua": """
            on_record_update("posts", function(e)
              log.info("seen", {n = e.data.n, attempt = e.attempt})
              if e.data.n == 1 and e.attempt == 1 then error("not yet") end
            end, {name = "flaky", retries = 1})
            """]
        func configure(_ clock: ManualClock) -> (inout ServerConfiguration) -> Void {
            { $0.clock = clock; $0.retrySchedule = [.seconds(60)]; $0.dataDirectory = data }
        }
        let before = LogCapture()
        let recordID = Mutex("")
        try await withServer(hooks: hook, logs: before, configure: configure(ManualClock())) { client, server in
            try await client.createCollection("posts")
            let id = try #require(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":0}"#).body?["id"]?.string)
            for n in 1...2 {
                _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"n":\#(n)}"#)
            }
            await server.waitForDeliveries()
            recordID.withLock { $0 = id }
        }
        #expect(before.lines("seen").map { $0.metadata["n"] } == ["1"], "n = 2 waits behind the failed n = 1")

        let clock = ManualClock() // starts where the first one did: the retry is 60 s away
        let after = LogCapture()
        try await withServer(hooks: hook, logs: after, configure: configure(clock)) { client, server in
            await server.waitForDeliveries()
            try await Task.sleep(for: .milliseconds(50))
            #expect(after.lines("seen").isEmpty, "not before its retry time, and nothing overtakes it")
            clock.advance(by: 60_000)
            #expect(await eventually { after.lines("seen").count == 2 })
            await server.waitForDeliveries()
            #expect(after.lines("seen").map { [$0.metadata["n"], $0.metadata["attempt"]] } == [["1", "2"], ["2", "1"]])
            guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries").body else { Issue.record("no list"); return }
            #expect(items.count == 2 && items.allSatisfy { $0["status"] == "succeeded" && $0["record_id"]?.string == recordID.withLock { $0 } })
        }
    }

    @Test func collectionOrderHoldsAcrossRecords() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["feed.lua": """
            on_record_create("posts", function(e)
              log.info("feed", {n = e.data.n})
              if e.data.n == 1 and e.attempt == 1 then error("not yet") end
            end, {name = "feed", order = "collection", retries = 1})
            on_record_create("posts", function(e) log.info("plain", {n = e.data.n}) end, {name = "plain"})
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(60)]
            }) { client, server in
            try await client.createCollection("posts")
            for n in 1...5 {
                _ = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":\#(n)}"#)
            }
            await server.waitForDeliveries()
            #expect(logs.lines("plain").compactMap { $0.metadata["n"] } == ["1", "2", "3", "4", "5"])
            #expect(logs.lines("feed").compactMap { $0.metadata["n"] } == ["1"], "other records wait behind the failed one")
            clock.advance(by: 60_000)
            #expect(await eventually { logs.lines("feed").count == 6 })
            await server.waitForDeliveries()
            #expect(logs.lines("feed").compactMap { $0.metadata["n"] } == ["1", "1", "2", "3", "4", "5"])
        }
    }
}
