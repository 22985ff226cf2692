import Foundation
import HookHost
import HostModules
import Hummingbird
import HummingbirdTesting
import Logging
import MoonbaseJSON
import MoonbaseModel
@testable import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import ServiceLifecycle
import Testing

/// Cron hooks in the server (SPEC section 14), driven by a manual clock. The clock starts on
/// 2027-01-15T08:00:00.000Z.
@Suite struct CronTests {
    static let tick = """
        cron("tick", "@every 1m", function(event)
          log.info("tick", {id = event.id, type = event.type, name = event.name, scheduled_at = event.scheduled_at,
                            timestamp = event.timestamp, attempt = event.attempt})
        end)
        """

    private func at(_ clock: ManualClock, plus milliseconds: Int64 = 0) -> String {
        Timestamp.format(millisecondsSince1970: clock.now() + milliseconds)
    }

    /// The listing's entry for cron `name`.
    private func listed(_ client: some TestClientProtocol, _ name: String) async throws -> JSONValue? {
        guard case .array(let files)? = try await client.send(.get, "/api/v1/hooks").body else { return nil }
        for file in files {
            if case .array(let crons)? = file["crons"], let cron = crons.first(where: { $0["name"] == .string(name) }) { return cron }
        }
        return nil
    }

    private func runs(_ client: some TestClientProtocol, _ query: String = "kind=cron") async throws -> [JSONValue] {
        guard case .array(let items)? = try await client.send(.get, "/api/v1/hooks/deliveries?" + query).body else { return [] }
        return items
    }

    @Test func aSlotRunsOnceWithItsEventAndIsListedAndLogged() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["tick.lua": Self.tick], logs: logs, configure: { $0.clock = clock }) { client, server in
            await server.waitForCronRuns()
            let start = clock.now()
            var cron = try #require(try await listed(client, "tick"))
            #expect(cron["schedule"] == "@every 1m" && cron["line"] == .int(1) && cron["catch_up"] == .bool(true))
            #expect(cron["next_run"] == "2027-01-15T08:01:00.000Z")
            #expect(cron["last_run"] == .null && cron["last_error"] == .null)
            #expect(logs.lines("tick").isEmpty, "a first start has no missed slot")

            clock.advance(by: 59_999)
            try await Task.sleep(for: .milliseconds(50))
            #expect(logs.lines("tick").isEmpty, "not before its slot")
            clock.advance(by: 1)
            #expect(await eventually { logs.lines("tick").count == 1 })
            await server.waitForCronRuns()
            let tick = try #require(logs.lines("tick").first)
            #expect(tick.metadata["type"] == "cron" && tick.metadata["name"] == "tick" && tick.metadata["attempt"] == "1")
            #expect(tick.metadata["scheduled_at"] == "2027-01-15T08:01:00.000Z")
            #expect(tick.metadata["timestamp"] == Timestamp.format(millisecondsSince1970: start + 60_000))
            #expect(tick.metadata["id"]?.hasPrefix("evt_") == true)
            try await Task.sleep(for: .milliseconds(50))
            #expect(logs.lines("tick").count == 1, "a slot runs once")

            #expect(try await eventually { try await listed(client, "tick")?["last_run"] == .string(at(clock)) })
            cron = try #require(try await listed(client, "tick"))
            #expect(cron["next_run"] == "2027-01-15T08:02:00.000Z" && cron["last_error"] == .null && cron["calls"] == .int(1))
            let logged = try await runs(client)
            #expect(logged.count == 1)
            let run = try #require(logged.first)
            #expect(run["kind"] == "cron" && run["handler"] == "tick" && run["status"] == "succeeded" && run["attempts"] == .int(1))
            #expect(run["scheduled_at"] == "2027-01-15T08:01:00.000Z" && run["event_id"]?.string == tick.metadata["id"])
            #expect(run["collection"] == .null && run["manual"] == .bool(false))
            let id = try #require(run["id"]?.string)
            #expect(id.hasPrefix("cron-"))
            let detail = try await client.send(.get, "/api/v1/hooks/deliveries/\(id)")
            guard case .array(let attempts)? = detail.body?["attempt_log"] else { Issue.record("no attempt log"); return }
            #expect(attempts.count == 1 && attempts[0]["status"] == "succeeded" && attempts[0]["delivery_id"] == .string(id))
            #expect(try await client.send(.get, "/api/v1/hooks/deliveries/cron-999").status == .notFound)
            #expect(try await client.send(.get, "/api/v1/hooks/deliveries/cron-x").status == .notFound)
            #expect(try await runs(client, "kind=record").isEmpty)
            #expect(try await client.send(.get, "/api/v1/hooks/deliveries?kind=other").status == .badRequest)

            // Two slots that came while the scheduler was busy elsewhere run each, in order.
            clock.advance(by: 120_000)
            #expect(await eventually { logs.lines("tick").count == 3 })
            await server.waitForCronRuns()
            #expect(logs.lines("tick").map { $0.metadata["scheduled_at"] } == [
                "2027-01-15T08:01:00.000Z", "2027-01-15T08:02:00.000Z", "2027-01-15T08:03:00.000Z",
            ])
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: auth)
            #expect(String(buffer: metrics.body).contains(#"moonbase_cron_runs_total{cron="tick",outcome="succeeded"} 3"#))
        }
    }

    @Test func aFailingRunIsRetriedThenDeadAndFiresOnHookFailed() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["flaky.lua": """
            cron("flaky", "@hourly", function(event)
              log.info("try", {attempt = event.attempt, id = event.id})
              error("downstream is down")
            end, {retries = 2})
            on_hook_failed(function(e)
              log.info("gave up", {kind = e.delivery.kind, handler = e.delivery.handler, attempts = e.delivery.attempts,
                                   type = e.event.type, id = e.id})
            end)
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(1), .seconds(60)]
            }) { client, server in
            await server.waitForCronRuns()
            clock.advance(by: 3_600_000)
            #expect(try await eventually { try await runs(client).first?["status"] == "failed" })
            var run = try #require(try await runs(client).first)
            #expect(run["attempts"] == .int(1) && run["max_attempts"] == .int(3))
            #expect(run["last_error"]?.string?.contains("hooks/flaky.lua:3: downstream is down") == true)
            #expect(run["next_attempt_at"] == "2027-01-15T09:00:01.000Z")
            #expect(try await listed(client, "flaky")?["last_error"]?.string?.contains("downstream is down") == true)

            clock.advance(by: 999)
            try await Task.sleep(for: .milliseconds(50))
            #expect(logs.lines("try").count == 1, "not before its time")
            clock.advance(by: 1)
            #expect(await eventually { logs.lines("try").count == 2 })
            // Recorded (and its retry time taken from the clock) before the clock moves on.
            #expect(try await eventually { try await runs(client).first?["attempts"] == .int(2) })
            clock.advance(by: 60_000)
            #expect(try await eventually { try await runs(client).first?["status"] == "dead" })
            #expect(await eventually { logs.lines("gave up").count == 1 })
            await server.waitForCronRuns()
            #expect(logs.lines("try").map { $0.metadata["attempt"] } == ["1", "2", "3"])
            #expect(Set(logs.lines("try").compactMap { $0.metadata["id"] }).count == 1, "the same event id on every attempt")
            let gaveUp = try #require(logs.lines("gave up").first)
            #expect(gaveUp.metadata["kind"] == "cron" && gaveUp.metadata["handler"] == "flaky" && gaveUp.metadata["attempts"] == "3")
            #expect(gaveUp.metadata["type"] == "cron" && gaveUp.metadata["id"] == logs.lines("try")[0].metadata["id"])
            #expect(logs.lines("cron run is dead").count == 1)
            run = try #require(try await runs(client).first)
            let id = try #require(run["id"]?.string)
            let detail = try await client.send(.get, "/api/v1/hooks/deliveries/\(id)")
            guard case .array(let attempts)? = detail.body?["attempt_log"] else { Issue.record("no attempt log"); return }
            #expect(attempts.map { $0["attempt"] } == [.int(1), .int(2), .int(3)])
            #expect(try await runs(client, "kind=cron&status=dead").count == 1)
            #expect(try await runs(client, "kind=cron&hook=flaky").count == 1)
            #expect(try await runs(client, "kind=cron&hook=other").isEmpty)

            // Sent again by hand: one more attempt.
            let retried = try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry")
            #expect(retried.status == .accepted && retried.body?["status"] == "pending" && retried.body?["max_attempts"] == .int(4))
            #expect(await eventually { logs.lines("try").count == 4 })
            #expect(try await eventually { try await runs(client).first?["status"] == "dead" })
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/cron-999/retry").status == .notFound)
        }
    }

    @Test func aFailedRunRetriedByHandDoesNotRunAgainAtItsRetryTime() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["flaky.lua": """
            cron("flaky", "@hourly", function(event) log.info("try", {attempt = event.attempt}); error("down") end, {retries = 1})
            """], logs: logs, configure: {
                $0.clock = clock
                $0.retrySchedule = [.seconds(60)]
            }) { client, server in
            await server.waitForCronRuns()
            clock.advance(by: 3_600_000)
            #expect(try await eventually { try await runs(client).first?["status"] == "failed" })
            let id = try #require(try await runs(client).first?["id"]?.string)
            let retried = try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry")
            #expect(retried.status == .accepted)
            #expect(try await eventually { try await runs(client).first?["status"] == "dead" })
            await server.waitForCronRuns()
            clock.advance(by: 60_000)
            try await Task.sleep(for: .milliseconds(100))
            await server.waitForCronRuns()
            #expect(logs.lines("try").map { $0.metadata["attempt"] } == ["1", "2"], "the retry timer was dropped")
        }
    }

    @Test func aReloadStartsNewCronsStopsGoneOnesAndFollowsAChangedSchedule() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["tick.lua": Self.tick], logs: logs, configure: { $0.clock = clock }) { client, server in
            await server.waitForCronRuns()
            let folder = server.hooks.directory.path
            try Self.tick.replacingOccurrences(of: "@every 1m", with: "@every 2m").write(toFile: folder + "/tick.lua", atomically: true, encoding: .utf8)
            try #"cron("other", "@every 1m", function(event) log.info("other", {scheduled_at = event.scheduled_at}) end)"#
                .write(toFile: folder + "/other.lua", atomically: true, encoding: .utf8)
            guard case .success = await server.reloadHooks(by: .api) else { Issue.record("reload refused"); return }
            #expect(try await listed(client, "tick")?["next_run"] == "2027-01-15T08:02:00.000Z")
            #expect(try await listed(client, "other")?["next_run"] == "2027-01-15T08:01:00.000Z")
            clock.advance(by: 60_000)
            #expect(await eventually { logs.lines("other").count == 1 })
            try await Task.sleep(for: .milliseconds(50))
            #expect(logs.lines("tick").isEmpty, "the old schedule's slot is gone")
            clock.advance(by: 60_000)
            #expect(await eventually { logs.lines("tick").count == 1 && logs.lines("other").count == 2 })
            await server.waitForCronRuns()
            #expect(logs.lines("tick").first?.metadata["scheduled_at"] == "2027-01-15T08:02:00.000Z")

            try FileManager.default.removeItem(atPath: folder + "/other.lua")
            guard case .success = await server.reloadHooks(by: .api) else { Issue.record("reload refused"); return }
            #expect(try await listed(client, "other") == nil)
            clock.advance(by: 60_000)
            try await Task.sleep(for: .milliseconds(100))
            await server.waitForCronRuns()
            #expect(logs.lines("other").count == 2, "a removed cron runs no more")
            let gone = try await client.send(.post, "/api/v1/hooks/cron/other/run")
            #expect(gone.status == .notFound && gone.body?["error"] == "no cron hook named 'other' (loaded: tick)")
        }
    }

    @Test func cronRunsOnPostgres() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        let database = try await PostgresTestDatabase.create()
        try await withServer(hooks: ["tick.lua": Self.tick], logs: logs, configure: {
            $0.database = database
            $0.clock = clock
        }) { client, server in
            #expect(server.store is PostgresStore)
            await server.waitForCronRuns()
            clock.advance(by: 60_000)
            #expect(await eventually { logs.lines("tick").count == 1 })
            let answer = try await client.send(.post, "/api/v1/hooks/cron/tick/run")
            #expect(answer.status == .accepted)
            #expect(await eventually { logs.lines("tick").count == 2 })
            await server.waitForCronRuns()
            let logged = try await runs(client)
            #expect(logged.map { $0["status"] } == ["succeeded", "succeeded"] && logged.map { $0["manual"] } == [.bool(true), .bool(false)])
            #expect(try await listed(client, "tick")?["last_run"] == .string(at(clock)))
        }
    }

    @Test func aRunByHandIsRecordedAndLeavesTheScheduleAlone() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        try await withServer(hooks: ["tick.lua": Self.tick], logs: logs, configure: { $0.clock = clock }) { client, server in
            await server.waitForCronRuns()
            clock.advance(by: 20_000)
            let answer = try await client.send(.post, "/api/v1/hooks/cron/tick/run")
            #expect(answer.status == .accepted)
            #expect(answer.body?["kind"] == "cron" && answer.body?["manual"] == .bool(true) && answer.body?["status"] == "pending")
            #expect(answer.body?["scheduled_at"] == .string(at(clock)))
            #expect(await eventually { logs.lines("tick").count == 1 })
            await server.waitForCronRuns()
            #expect(logs.lines("tick").first?.metadata["scheduled_at"] == "2027-01-15T08:00:20.000Z")
            let cron = try #require(try await listed(client, "tick"))
            #expect(cron["next_run"] == "2027-01-15T08:01:00.000Z", "a run by hand does not move the next run")
            #expect(cron["last_run"] == .string(at(clock)))
            #expect(try await runs(client).first?["status"] == "succeeded")
            clock.advance(by: 40_000)
            #expect(await eventually { logs.lines("tick").count == 2 }, "the slot still runs")

            let unknown = try await client.send(.post, "/api/v1/hooks/cron/nope/run")
            #expect(unknown.status == .notFound && unknown.body?["error"] == "no cron hook named 'nope' (loaded: tick)")
            let anonymous = try await client.send(.post, "/api/v1/hooks/cron/tick/run", headers: [:])
            #expect(anonymous.status == .unauthorized)
            #expect(try await client.send(.get, "/api/v1/hooks/cron/tick/run").status == .methodNotAllowed)
        }
    }

    @Test func aSlotMissedWhileDownRunsOnceAtStartUnlessCatchUpIsOff() async throws {
        let folder = try HooksFolder(["jobs.lua": """
            cron("daily", "@daily", function(event) log.info("daily", {scheduled_at = event.scheduled_at}) end)
            cron("skipper", "@daily", function(event) log.info("skipper", {}) end, {catch_up = false})
            """])
        defer { folder.remove() }
        let clock = ManualClock()
        let logs = LogCapture()
        var configuration = ServerConfiguration(folder)
        configuration.hookWorkers = 1
        configuration.clock = clock
        func serve(_ body: @escaping @Sendable (any TestClientProtocol, MoonbaseServer) async throws -> Void) async throws {
            let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
            try await server.application().test(.router) { client in try await body(client, server) }
        }
        try await serve { _, server in await server.waitForCronRuns() }
        #expect(logs.lines("daily").isEmpty, "a first start has no history, so nothing was missed")

        clock.advance(by: 3 * 86_400_000) // three midnights pass while the server is down
        try await serve { client, server in
            await server.waitForCronRuns()
            #expect(await eventually { logs.lines("daily").count == 1 })
            await server.waitForCronRuns()
            #expect(logs.lines("daily").first?.metadata["scheduled_at"] == "2027-01-18T00:00:00.000Z", "the latest missed slot")
            #expect(logs.lines("skipper").isEmpty)
            #expect(logs.lines("skipping a cron run missed while the server was down (catch_up = false)").count == 1)
            let logged = try await runs(client)
            #expect(logged.count == 1)
        }
        try await serve { _, server in await server.waitForCronRuns() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(logs.lines("daily").count == 1, "caught up once, not again at the next start")
    }

    @Test func twoSchedulersOnOneStoreRunASlotOnce() async throws {
        let folder = try HooksFolder(["tick.lua": Self.tick])
        defer { folder.remove() }
        let logs = LogCapture()
        let data = (folder.path as NSString).deletingLastPathComponent + "/data"
        let store = try SQLiteStore(directory: data)
        let hooks = try HookGenerations(HookLoading(directory: HookDirectory(path: folder.path), states: 2, limits: .default,
                                                    modules: standardModules, logger: logs.logger))
        let clock = ManualClock()
        let schedulers = (0..<2).map { _ in
            CronScheduler(store: store, hooks: hooks, clock: clock, retrySchedule: [.seconds(1)], metrics: ServerMetrics(node: "n", version: "0").factory,
                          logger: logs.logger)
        }
        let group = ServiceGroup(services: schedulers, logger: logs.logger)
        let running = Task { try await group.run() }
        for scheduler in schedulers { await scheduler.waitUntilIdle() }
        for _ in 0..<3 {
            clock.advance(by: 60_000)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await eventually { logs.lines("tick").count == 3 })
        for scheduler in schedulers { await scheduler.waitUntilIdle() }
        try await Task.sleep(for: .milliseconds(50))
        // Two schedulers run their slots side by side: once each, in no set order.
        #expect(logs.lines("tick").compactMap { $0.metadata["scheduled_at"] }.sorted() == [
            "2027-01-15T08:01:00.000Z", "2027-01-15T08:02:00.000Z", "2027-01-15T08:03:00.000Z",
        ], "each slot once, whichever scheduler claimed it")
        #expect(try await store.cronRuns(DeliveryFilter()).count == 3)
        await group.triggerGracefulShutdown()
        try await running.value
        await hooks.shutdown()
    }
}
