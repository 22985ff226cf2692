import Foundation
import Hummingbird
import HummingbirdTesting
import MoonbaseServer
import MoonbaseTestSupport
import Testing

@Suite struct AdminTokenTests {
    @Test func generatedOnceStoredWithMode0600AndReused() throws {
        let data = NSTemporaryDirectory() + "moonbase-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let first = try AdminToken.resolve(given: nil, dataDirectory: data)
        #expect(first.generated && first.token.count == 64)
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/admin_token")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try AdminToken.resolve(given: nil, dataDirectory: data)
        #expect(!second.generated && second.token == first.token, "printed once: the next start reads it back")
        let given = try AdminToken.resolve(given: "mine", dataDirectory: data)
        #expect(given.token == "mine" && !given.generated)
    }

    @Test func serverWithoutATokenUsesTheGeneratedOne() async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
        configuration.hooksDirectory = folder.path
        let server = try MoonbaseServer(configuration: configuration, logger: LogCapture().logger)
        let stored = try String(contentsOfFile: configuration.dataDirectory + "/admin_token", encoding: .utf8)
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == server.adminToken)
        try await server.application().test(.router) { client in
            let allowed = try await client.send(.get, "/api/v1/collections", headers: [.authorization: "Bearer \(server.adminToken)"])
            let refused = try await client.send(.get, "/api/v1/collections", headers: [:])
            #expect(allowed.status == .ok && refused.status == .unauthorized)
        }
    }
}

@Suite struct LiveServerTests {
    @Test func wholeServerOnARealSocket() async throws {
        let folder = try HooksFolder(["stamp.lua": "before_record_create('posts', function(e) e.data.stamped = true end)"])
        defer { folder.remove() }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
        configuration.hooksDirectory = folder.path
        configuration.adminToken = token
        let logs = LogCapture()
        let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
        try await server.application().test(.live) { client in
            #expect(try await client.send(.get, "/api/v1/health", headers: [:]).body == ["status": "ok"])
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"live"}"#)
            #expect(created.status == .created && created.body?["stamped"] == true)
        }
        let ready = try #require(logs.lines("moonbase ready").first)
        #expect(ready.metadata["hook_files_loaded"] == "1" && ready.metadata["hook_files_failed"] == "0")
    }
}
