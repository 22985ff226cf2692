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
        let logs = LogCapture()
        let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
        let stored = try String(contentsOfFile: configuration.dataDirectory + "/admin_token", encoding: .utf8)
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == server.adminToken)
        // Logged at once (a line of its own), not printed to a buffered stdout.
        #expect(logs.lines("generated an admin token").map { $0.metadata["token"] } == [server.adminToken])
        try await Application(router: server.router()).test(.router) { client in
            let allowed = try await client.send(.get, "/api/v1/collections", headers: [.authorization: "Bearer \(server.adminToken)"])
            let refused = try await client.send(.get, "/api/v1/collections", headers: [:])
            #expect(allowed.status == .ok && refused.status == .unauthorized)
        }
        await server.stop()
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
        try await server.start()
        try await server.application().test(.live) { client in
            #expect(try await client.send(.get, "/api/v1/health", headers: [:]).body == ["status": "ok"])
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"live"}"#)
            #expect(created.status == .created && created.body?["stamped"] == true)
        }
        let ready = try #require(logs.lines("moonbase ready").first)
        #expect(ready.metadata["hook_files_loaded"] == "1" && ready.metadata["hook_files_failed"] == "0")
        await server.stop()
    }
}

@Suite struct DataFolderTests {
    /// One process owns a data folder: a second server on it fails before it opens the store
    /// (so it takes up no delivery), saying who owns it; once the first stops, it may start.
    @Test func aSecondServerOnTheSameFolderIsRefusedWithAClearError() async throws {
        let folder = try HooksFolder(["count.lua": "on_record_create('posts', function(e) log.info('delivered') end)"])
        defer { folder.remove() }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
        configuration.hooksDirectory = folder.path
        configuration.adminToken = token
        let first = try MoonbaseServer(configuration: configuration, logger: LogCapture().logger)
        let logs = LogCapture()
        do {
            _ = try MoonbaseServer(configuration: configuration, logger: logs.logger)
            Issue.record("a second server on the same data folder must be refused")
        } catch let error as ServerError {
            #expect("\(error)".contains("in use by another moonbase process (pid \(getpid()))"))
            #expect("\(error)".contains("--data"))
        }
        #expect(logs.lines("taking up unfinished hook deliveries").isEmpty)
        await first.stop()
        let second = try MoonbaseServer(configuration: configuration, logger: logs.logger)
        await second.stop()
    }

    @Test func portInUseNamesThePortAndSuggestsAnother() async throws {
        // Another listener holds a port.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(listener, raw, length) == 0, listen(listener, 1) == 0, getsockname(listener, raw, &length) == 0 else {
                    throw ServerError.dataFolderUnusable(path: "test socket", reason: "cannot listen")
                }
            }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))

        let folder = try HooksFolder([:])
        defer { folder.remove() }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
        configuration.hooksDirectory = folder.path
        configuration.adminToken = token
        configuration.port = port
        do {
            try await MoonbaseServer(configuration: configuration, logger: LogCapture().logger).run()
            Issue.record("serving on a taken port must fail")
        } catch let error as ServerError {
            #expect(error.description == "port \(port) on 127.0.0.1 is already in use (another server?); choose another with --port")
        }
    }
}
