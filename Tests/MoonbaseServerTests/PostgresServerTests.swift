import Foundation
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import Testing

/// The server on PostgreSQL: the REST API and after-hook delivery behave as on SQLite, and the
/// database going away answers 503 until it is back.
@Suite("Server on PostgreSQL")
struct PostgresServerTests {
    @Test func restAndAfterHookDeliveriesWorkOnPostgres() async throws {
        let logs = LogCapture()
        let database = try await PostgresTestDatabase.create()
        try await withServer(hooks: ["recorder.lua": ServerHookTests.recorder], logs: logs,
                             configure: { $0.database = database }) { client, server in
            #expect(server.store is PostgresStore)
            try await client.createCollection("posts")
            #expect(try await client.send(.post, "/api/v1/collections", json: #"{"name":"posts"}"#).status == .conflict)
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"One","z":1,"a":2}"#)
            #expect(created.status == .created)
            let id = try #require(created.body?["id"]?.string)
            let updated = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Two"}"#)
            #expect(updated.status == .ok && updated.body?["title"] == "Two")
            let listed = try await client.send(.get, "/api/v1/collections/posts/records?title=Two")
            #expect(listed.body?["total_items"] == .int(1))
            #expect(try await client.send(.delete, "/api/v1/collections/posts/records/\(id)").status == .noContent)
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").status == .notFound)
            await server.waitForDeliveries()
            let events = logs.lines("event").map { [$0.metadata["type"], $0.metadata["title"], $0.metadata["old"], $0.metadata["id"]] }
            #expect(events == [["record.created", "One", "none", id], ["record.updated", "Two", "One", id],
                               ["record.deleted", "Two", "Two", id]])
            #expect(try await eventually {
                let log = try await client.send(.get, "/api/v1/hooks/deliveries?status=succeeded")
                guard case .array(let items)? = log.body else { return false }
                return items.count == 3
            })
        }
    }

    @Test func theDatabaseGoingAwayAnswers503AndServiceResumesWhenItIsBack() async throws {
        var database = try await PostgresTestDatabase.create()
        let relay = try TCPRelay(to: database.port)
        database.port = relay.port
        defer { relay.stop() }
        try await withServer(configure: { $0.database = database }) { client, _ in
            try await client.createCollection("posts")
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":1}"#).status == .created)
            relay.stop()
            let write = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":2}"#)
            #expect(write.status == .serviceUnavailable && write.body?["error"] == "storage unavailable")
            let read = try await client.send(.get, "/api/v1/collections/posts/records")
            #expect(read.status == .serviceUnavailable && read.body?["error"] == "storage unavailable")
            try relay.start()
            #expect(await eventually {
                (try? await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":3}"#).status) == .created
            })
            let listing = try await client.send(.get, "/api/v1/collections/posts/records")
            #expect(listing.status == .ok && listing.body?["total_items"] == .int(2), "the refused write stored nothing")
        }
    }

    @Test func startingAgainstAnUnreachableDatabaseFailsClearly() async throws {
        let relay = try TCPRelay(to: 1)
        let port = relay.port
        relay.stop()
        var configuration = ServerConfiguration()
        try configuration.useDatabase(url: "postgres://ada:secret@127.0.0.1:\(port)/moon")
        do {
            _ = try await MoonbaseServer.open(configuration: configuration, logger: LogCapture().logger)
            Issue.record("a server opened without its database")
        } catch let error as StoreError {
            #expect(error.description.contains("cannot reach PostgreSQL at postgres://ada@127.0.0.1:\(port)/moon"), "\(error)")
        }
        #expect(throws: DatabaseURLError.self) { try configuration.useDatabase(url: "postgres://127.0.0.1/moon") }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func serveRefusesABadURLAndExitsWhenTheDatabaseIsUnreachable() async throws {
        let bad = try await CommandLineTests.moonbase(["serve", "--database", "mysql://ada@localhost/moon", "--port", "0"])
        #expect(bad.status != 0 && bad.output.contains("invalid database URL"), "\(bad.output)")
        let relay = try TCPRelay(to: 1)
        let port = relay.port
        relay.stop()
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let unreachable = try await CommandLineTests.moonbase([
            "serve", "--database", "postgres://ada:secret@127.0.0.1:\(port)/moon", "--port", "0", "--hooks-dir", folder.path,
            "--data", folder.path + "/../data",
        ])
        #expect(unreachable.status != 0)
        #expect(unreachable.output.contains("cannot reach PostgreSQL at postgres://ada@127.0.0.1:\(port)/moon"), "\(unreachable.output)")
        #expect(!unreachable.output.contains("secret"))
        // The same from the environment.
        let fromEnvironment = try await CommandLineTests.moonbase(
            ["serve", "--port", "0", "--hooks-dir", folder.path, "--data", folder.path + "/../data"],
            environment: ["MOONBASE_DATABASE_URL": "postgres://ada@127.0.0.1:\(port)/moon"])
        #expect(fromEnvironment.status != 0, "\(fromEnvironment.output)")
        #expect(fromEnvironment.output.contains("cannot reach PostgreSQL at postgres://ada@127.0.0.1:\(port)/moon"), "\(fromEnvironment.output)")
    }
}
