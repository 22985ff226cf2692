import Foundation
import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseModel
@testable import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import Testing

/// Nodes (issue 14): the heartbeat, `GET /api/v1/nodes`, hooks that differ, and the
/// `Moonbase-Node` header.
@Suite struct NodeTests {
    static let hook = "on_any_event(function() end, {name = 'noop'})"

    static func items(_ listing: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = listing?["items"] { return items }
        return []
    }

    /// The live nodes' ids as `client`'s node lists them.
    static func ids(_ client: some TestClientProtocol) async throws -> [String] {
        items(try await client.send(.get, "/api/v1/nodes").body).compactMap { $0["id"]?.string }
    }

    @Test func everyAnswerNamesTheNodeThatGaveIt() async throws {
        try await withServer(hooks: ["a.lua": Self.hook], configure: { $0.nodeID = "node-7" }) { client, _ in
            let header = HTTPFields.Element.Name(MoonbaseServer.nodeHeader)!
            let ok = try await client.execute(uri: "/api/v1/health", method: .get, headers: auth)
            #expect(ok.status == .ok && ok.headers[header] == "node-7")
            let unauthorised = try await client.execute(uri: "/api/v1/collections", method: .get)
            #expect(unauthorised.status == .unauthorized && unauthorised.headers[header] == "node-7")
            let missing = try await client.execute(uri: "/api/v1/collections/nope/records", method: .get, headers: auth)
            #expect(missing.status == .notFound && missing.headers[header] == "node-7")
            let nowhere = try await client.execute(uri: "/no/such/path", method: .get)
            #expect(nowhere.status == .notFound && nowhere.headers[header] == "node-7")
            let hooks = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let files)? = hooks.body else { Issue.record("no listing"); return }
            #expect(files.count == 1 && files.allSatisfy { $0["node"] == "node-7" })
        }
    }

    @Test func aServerOnSQLiteListsItselfAlone() async throws {
        try await withServer(hooks: ["a.lua": Self.hook], configure: { $0.nodeID = "solo" }) { client, server in
            #expect(try await client.send(.get, "/api/v1/nodes", headers: [:]).status == .unauthorized)
            #expect(try await client.send(.get, "/api/v1/nodes", headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
            #expect(try await client.send(.post, "/api/v1/nodes").status == .methodNotAllowed)
            #expect(try await eventually { try await Self.ids(client) == ["solo"] })
            let listing = try await client.send(.get, "/api/v1/nodes").body
            #expect(listing?["node"] == "solo")
            let node = try #require(Self.items(listing).first)
            #expect(node["self"] == true && node["hooks_differ"] == false && node["version"] == .string(MoonbaseServer.version))
            #expect(node["hooks_digest"]?.string == server.hooks.current.hooksDigest && node["address"] == "127.0.0.1:8090")
            #expect(Timestamp.milliseconds(node["started"]?.string ?? "") != nil && Timestamp.milliseconds(node["heartbeat"]?.string ?? "") != nil)
        }
    }

    /// The heartbeat sends the current generation's digest: a reload changes it.
    @Test func aReloadChangesTheDigestTheNodeSends() async throws {
        try await withServer(hooks: ["a.lua": Self.hook], configure: { $0.nodeHeartbeat = .milliseconds(100) }) { client, server in
            let digest = { () async throws -> String? in Self.items(try await client.send(.get, "/api/v1/nodes").body).first?["hooks_digest"]?.string }
            let first = server.hooks.current.hooksDigest
            #expect(try await eventually { try await digest() == first })
            try HookReloadTests.write("b.lua", Self.hook, in: server)
            #expect(try await client.send(.post, "/api/v1/hooks/reload").status == .ok)
            let second = server.hooks.current.hooksDigest
            #expect(second != first)
            #expect(try await eventually { try await digest() == second })
        }
    }

    /// Three nodes on one PostgreSQL database: all listed; the one started with other hooks is
    /// flagged and says so in its log; one that shuts down leaves the listing at once.
    @Test func nodesOnOnePostgresDatabaseListEachOtherAndFlagOtherHooks() async throws {
        let database = try await PostgresTestDatabase.create()
        let odd = LogCapture()
        let node = { @Sendable (id: String) in { @Sendable (configuration: inout ServerConfiguration) in
            configuration.database = database
            configuration.nodeID = id
            // The first heartbeat is at once; a long window keeps a node listed however slow a loaded machine is.
            configuration.nodeHeartbeat = .seconds(10)
        } }
        try await withServer(hooks: ["a.lua": Self.hook], configure: node("a")) { a, server in
            try await withServer(hooks: ["a.lua": Self.hook], configure: node("b")) { b, _ in
                #expect(try await eventually { try await Self.ids(a) == ["a", "b"] })
                try await withServer(hooks: ["a.lua": Self.hook + " -- edited"], logs: odd, configure: node("c")) { c, _ in
                    #expect(try await eventually { try await Self.ids(b) == ["a", "b", "c"] })
                    let listing = try await c.send(.get, "/api/v1/nodes").body
                    #expect(listing?["node"] == "c")
                    let items = Self.items(listing)
                    #expect(items.map { $0["hooks_differ"] } == [false, false, true])
                    #expect(items.map { $0["self"] } == [false, false, true])
                    #expect(items[0]["hooks_digest"] == items[1]["hooks_digest"] && items[0]["hooks_digest"]?.string == server.hooks.current.hooksDigest)
                    #expect(await eventually { !odd.lines("this node's hooks differ from the other live nodes'").isEmpty })
                    let warning = try #require(odd.lines("this node's hooks differ from the other live nodes'").first)
                    #expect(warning.level == .warning && warning.metadata["node"] == "c" && warning.metadata["agreed_by"] == "a,b")
                    #expect(warning.metadata["agreed_digest"] == items[0]["hooks_digest"]?.string)
                }
                #expect(try await Self.ids(a) == ["a", "b"], "a node shutting down leaves at once")
            }
        }
    }

    /// Two nodes given one `--node-id` overwrite each other's row: they say so (once each).
    @Test func twoNodesWithOneIDSaySo() async throws {
        let database = try await PostgresTestDatabase.create()
        let logs = LogCapture()
        let twin = { @Sendable (configuration: inout ServerConfiguration) in
            configuration.database = database
            configuration.nodeID = "twin"
            configuration.nodeHeartbeat = .milliseconds(100)
        }
        let message = "another node has this node's id: give each node its own --node-id"
        try await withServer(logs: logs, configure: twin) { _, _ in
            try await Task.sleep(for: .milliseconds(300))
            #expect(logs.lines(message).isEmpty, "a node alone keeps its row")
            try await withServer(logs: logs, configure: twin) { _, _ in
                #expect(await eventually { logs.lines(message).count == 2 })
                #expect(logs.lines(message).allSatisfy { $0.level == .error && $0.metadata["node"] == "twin" })
            }
        }
        #expect(logs.lines(message).count == 2, "once per node")
    }

    @Test func theAgreedHooksAreTheMostNodesOrElseTheEldestNodes() {
        func node(_ id: String, _ digest: String, started: String) -> LiveNode {
            LiveNode(node: NodeHeartbeat(id: id, address: id, started: started, version: "0", hooksDigest: digest), heartbeat: started)
        }
        let early = "2026-01-01T00:00:00.000Z", late = "2026-01-02T00:00:00.000Z"
        #expect(NodeListing.agreedDigest([]) == nil)
        #expect(NodeListing.agreedDigest([node("a", "x", started: early), node("b", "y", started: early), node("c", "y", started: late)]) == "y")
        #expect(NodeListing.agreedDigest([node("a", "x", started: late), node("b", "y", started: early)]) == "y", "a tie: the eldest")
        #expect(NodeListing.agreedDigest([node("b", "x", started: early), node("a", "y", started: early)]) == "y", "then the smaller id")
        let listing = NodeListing.json([node("a", "x", started: late), node("b", "y", started: early)], answeredBy: "a")
        #expect(Self.items(listing).map { $0["hooks_differ"] } == [true, false] && Self.items(listing).map { $0["self"] } == [true, false])
    }
}
