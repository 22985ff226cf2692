import MoonbaseServer
import RecordStore
import Testing

/// `serve --sync normal|full` (SPEC section 12): the pragma the writer commits with.
@Suite struct SyncSettingTests {
    @Test(arguments: [SQLiteStore.Synchronous.normal, .full])
    func theWriterCommitsWithTheChosenSetting(_ sync: SQLiteStore.Synchronous) async throws {
        try await withServer(configure: { $0.sync = sync }) { client, server in
            let store = try #require(server.store as? SQLiteStore)
            #expect(try store.synchronousInEffect() == sync)
            // Writes go through with it.
            try await client.createCollection("posts")
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":1}"#).status == .created)
        }
    }

    @Test func normalIsTheDefault() {
        #expect(ServerConfiguration().sync == .normal)
    }
}
