import Foundation
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseModel
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

    /// Two nodes on one database: node b's update of a record whose delivery node a still holds
    /// (failing once, retried a second later) is not run by b; it runs after a's, in commit order,
    /// and b's `async = false` request answers only once it has run, on whichever node.
    @Test func aLanesDeliveriesRunInOrderAcrossNodesAndSyncWritesWaitWhereverTheyRun() async throws {
        let logs = LogCapture()
        let database = try await PostgresTestDatabase.create()
        let hooks = ["ordered.lua": """
            -- One handler for both writes: a record's deliveries to it keep commit order.
            on_any_event(function(e)
              if e.type == "record.created" and e.attempt == 1 then error("first try fails") end
              log.info("event", {type = e.type, title = e.data.title, attempt = e.attempt})
            end, {retries = 2, async = false})
            """]
        @Sendable func node(_ name: String) -> (inout ServerConfiguration) -> Void {
            { configuration in
                configuration.database = database
                configuration.nodeID = name
                // Long enough that a loaded machine checks a's failure before the retry; the
                // request's wait (twice the hook time limit) outlasts the retry.
                configuration.retrySchedule = [.seconds(3)]
                configuration.limits.wallClock = .seconds(10)
            }
        }
        try await withServer(hooks: hooks, logs: logs, configure: node("a")) { a, _ in
            try await withServer(hooks: hooks, logs: logs, configure: node("b")) { b, _ in
                try await a.createCollection("posts")
                let created = try await a.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"One"}"#)
                let id = try #require(created.body?["id"]?.string)
                // Node a's create delivery has failed once: it holds the record's lane until its retry.
                #expect(try await eventually {
                    guard case .array(let failed)? = try await a.send(.get, "/api/v1/hooks/deliveries?status=failed").body else { return false }
                    return !failed.isEmpty
                })
                #expect(logs.lines("event").isEmpty)
                let updated = try await b.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Two"}"#)
                #expect(updated.status == .ok)
                let events = logs.lines("event").map { [$0.metadata["type"], $0.metadata["title"]] }
                #expect(events == [["record.created", "One"], ["record.updated", "Two"]],
                        "the update ran after the create's retry, before b answered: \(events)")
            }
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func copyDataMovesASQLiteFoldersRecordsIntoPostgres() async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let data = folder.path + "/../data"
        let database = try await PostgresTestDatabase.create()
        let password = database.password?.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed) ?? ""
        let url = "postgres://\(database.username):\(password)@\(database.host):\(database.port)/\(database.database)"

        let nothing = try await CommandLineTests.moonbase(["copy-data", "--data", data, "--database", url])
        #expect(nothing.status != 0 && nothing.output.contains("no Moonbase database at"), "\(nothing.output)")
        let noURL = try await CommandLineTests.moonbase(["copy-data", "--data", data], environment: [:])
        #expect(noURL.status != 0 && noURL.output.contains("--database"), "\(noURL.output)")

        var ids: [String] = []
        do {
            let sqlite = try SQLiteStore(directory: data)
            _ = try await sqlite.createCollection(name: "posts")
            for n in 1...3 { ids.append(try await sqlite.insert(Record.new(collection: "posts", fields: ["n": .int(Int64(n))])).record.id) }
        }
        let copied = try await CommandLineTests.moonbase(["copy-data", "--data", data, "--database", url])
        #expect(copied.status == 0, "\(copied.output)")
        #expect(copied.output.contains("posts: 3 records") && copied.output.contains("copied 3 records in 1 collections"), "\(copied.output)")
        let again = try await CommandLineTests.moonbase(["copy-data", "--data", data], environment: ["MOONBASE_DATABASE_URL": url])
        #expect(again.status == 0 && again.output.contains("3 were there already"), "\(again.output)")

        let postgres = try await PostgresStore.open(database, logger: PostgresTestDatabase.logger, maxConnections: 1)
        let page = try await postgres.list(collection: "posts", page: 1, perPage: 10, sort: .default)
        #expect(page.items.map(\.id) == ids)
        await postgres.close()
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
