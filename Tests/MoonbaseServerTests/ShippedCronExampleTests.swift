import Foundation
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import Testing

/// hooks/cleanup.lua, the nightly cleanup cron, on a server in process with a manual clock
/// (which starts on 2027-01-15T08:00:00.000Z).
@Suite(.serialized) struct ShippedCronExampleTests {
    /// A roomy wall-clock budget: a run deletes a hundred records, and these tests are not about
    /// time (a loaded machine must not fail them).
    static let limits = LuaLimits(instructions: LuaLimits.default.instructions, wallClock: .seconds(60), memoryBytes: LuaLimits.default.memoryBytes)

    /// Waits until `condition` holds, for a minute at most.
    private func within(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<600 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func cleanupDeletesOldRecordsAtThreeAndKeepsRecentOnes() async throws {
        let logs = LogCapture()
        let clock = ManualClock()
        unsetenv("CLEANUP_COLLECTION")
        setenv("CLEANUP_DAYS", "30", 1)
        defer { unsetenv("CLEANUP_DAYS") }
        try await withServer(hooks: ["cleanup.lua": try ShippedExampleTests.example("cleanup.lua")], limits: Self.limits, logs: logs,
                             configure: { $0.clock = clock }) { client, server in
            await server.waitForCronRuns()
            try await client.createCollection("sessions")
            func insert(_ created: String, _ n: Int) async throws {
                let record = Record(id: RecordID.make(), collection: "sessions", created: created, updated: created, version: 1, fields: ["n": .int(Int64(n))])
                _ = try await server.store.insert(record)
            }
            for n in 0..<120 { try await insert("2026-11-20T10:00:00.000Z", n) } // more than a page
            try await insert("2026-12-17T02:59:59.999Z", 120) // just older than 30 days before 2027-01-16T03:00
            try await insert("2026-12-17T03:00:00.000Z", 121)
            try await insert("2027-01-14T09:00:00.000Z", 122)

            clock.advance(by: 19 * 3_600_000 - 1)
            try await Task.sleep(for: .milliseconds(50))
            #expect(logs.lines("cleanup done").isEmpty, "not before 03:00")
            clock.advance(by: 1)
            #expect(await within { logs.lines("cleanup done").count == 1 })
            await server.waitForCronRuns()
            let done = try #require(logs.lines("cleanup done").first)
            #expect(done.metadata["deleted"] == "121" && done.metadata["before"] == "2026-12-17T03:00:00.000Z")
            let left = try await server.store.list(collection: "sessions", page: 1, perPage: 10, sort: .default)
            #expect(left.items.map { $0.fields["n"] }.sorted { "\($0!)" < "\($1!)" } == [.int(121), .int(122)])
            guard case .array(let runs)? = try await client.send(.get, "/api/v1/hooks/deliveries?hook=cleanup_sessions").body else {
                Issue.record("no runs")
                return
            }
            #expect(runs.count == 1 && runs.first?["status"] == "succeeded" && runs.first?["scheduled_at"] == "2027-01-16T03:00:00.000Z")

            // By hand, a day later: the record of 2026-12-17T03:00 is now old enough.
            clock.advance(by: 86_400_000)
            #expect(await within { logs.lines("cleanup done").count == 2 })
            await server.waitForCronRuns()
            #expect(logs.lines("cleanup done").last?.metadata["deleted"] == "1")
            #expect(try await client.send(.post, "/api/v1/hooks/cron/cleanup_sessions/run").status == .accepted)
            #expect(await within { logs.lines("cleanup done").count == 3 })
            #expect(logs.lines("cleanup done").last?.metadata["deleted"] == "0")
        }
    }

    @Test func cleanupOfAMissingCollectionOnlyWarns() async throws {
        let logs = LogCapture()
        setenv("CLEANUP_COLLECTION", "nosuch", 1)
        defer { unsetenv("CLEANUP_COLLECTION") }
        try await withServer(hooks: ["cleanup.lua": try ShippedExampleTests.example("cleanup.lua")], logs: logs) { client, server in
            await server.waitForCronRuns()
            let answer = try await client.send(.post, "/api/v1/hooks/cron/cleanup_sessions/run")
            #expect(answer.status == .accepted)
            #expect(await within { logs.lines("cleanup skipped").count == 1 })
            #expect(logs.lines("cleanup skipped").first?.metadata["collection"] == "nosuch")
        }
    }
}
