import MoonbaseModel
import MoonbaseTestSupport
import RecordStore
import Testing

/// The nodes' heartbeats, on both engines (on SQLite, in memory: its one node).
@Suite struct NodeRegistryTests {
    static func beat(_ id: String, digest: String = "d1", address: String = "127.0.0.1:1") -> NodeHeartbeat {
        NodeHeartbeat(id: id, address: address, started: "2026-12-03T10:00:00.000Z", version: "0.1.0", hooksDigest: digest)
    }

    private func registry(_ engine: Engine) async throws -> any NodeRegistry {
        try #require(try await makeStore(engine, collections: []) as? any NodeRegistry)
    }

    @Test(arguments: Engine.allCases)
    func aHeartbeatIsListedUpdatedAndRemoved(engine: Engine) async throws {
        let nodes = try await registry(engine)
        #expect(try await nodes.liveNodes(within: .seconds(60)).isEmpty)
        let before = Timestamp.currentMilliseconds()
        #expect(try await nodes.recordHeartbeat(Self.beat("b")) == nil, "no row before")
        #expect(try await nodes.recordHeartbeat(Self.beat("a")) == nil)
        #expect(try await nodes.recordHeartbeat(Self.beat("b", digest: "d2", address: "127.0.0.1:2")) == Self.beat("b"), "the row as it was")
        let live = try await nodes.liveNodes(within: .seconds(60))
        #expect(live.map(\.node) == [Self.beat("a"), Self.beat("b", digest: "d2", address: "127.0.0.1:2")], "one row per node, by id")
        for node in live {
            let at = try #require(Timestamp.milliseconds(node.heartbeat), "\(node.heartbeat) is ISO-8601")
            #expect(abs(at - before) < 60_000)
        }
        try await nodes.removeNode(id: "b")
        try await nodes.removeNode(id: "nobody")
        #expect(try await nodes.liveNodes(within: .seconds(60)).map(\.node.id) == ["a"])
    }

    @Test(arguments: Engine.allCases)
    func aNodeThatStopsBeatingDropsOutAfterTheWindow(engine: Engine) async throws {
        let nodes = try await registry(engine)
        try await nodes.recordHeartbeat(Self.beat("quiet"))
        try await nodes.recordHeartbeat(Self.beat("steady"))
        try await Task.sleep(for: .milliseconds(1500))
        try await nodes.recordHeartbeat(Self.beat("steady"))
        #expect(try await nodes.liveNodes(within: .seconds(1)).map(\.node.id) == ["steady"])
        #expect(try await nodes.liveNodes(within: .seconds(60)).map(\.node.id) == ["quiet", "steady"], "listed again with a wider window")
    }

    /// Two stores on one database, as two nodes: each sees the other.
    @Test func nodesSharingAPostgresDatabaseSeeEachOther() async throws {
        let database = try await PostgresTestDatabase.create()
        let one = try await PostgresStore.open(database, logger: PostgresTestDatabase.logger, maxConnections: 2)
        let two = try await PostgresStore.open(database, logger: PostgresTestDatabase.logger, maxConnections: 2)
        try await one.recordHeartbeat(Self.beat("one"))
        try await two.recordHeartbeat(Self.beat("two", digest: "d2"))
        #expect(try await one.liveNodes(within: .seconds(60)).map(\.node.id) == ["one", "two"])
        #expect(try await two.liveNodes(within: .seconds(60)).map(\.node.hooksDigest) == ["d1", "d2"])
        try await two.removeNode(id: "two")
        #expect(try await one.liveNodes(within: .seconds(60)).map(\.node.id) == ["one"])
        await one.close()
        await two.close()
    }
}
