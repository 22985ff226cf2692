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
        let configuration = ServerConfiguration(folder, token: nil)
        let logs = LogCapture()
        let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
        let stored = try String(contentsOfFile: configuration.dataDirectory + "/admin_token", encoding: .utf8)
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == server.adminToken)
        // Logged at once (a line of its own), not printed to a buffered stdout.
        #expect(logs.lines("generated an admin token").map { $0.metadata["token"] } == [server.adminToken])
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
        let configuration = ServerConfiguration(folder)
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

@Suite struct DataFolderTests {
    /// One process owns a data folder: a second server on it fails before it opens the store
    /// (so it takes up no delivery), saying who owns it; once the first stops, it may start.
    @Test func aSecondServerOnTheSameFolderIsRefusedWithAClearError() async throws {
        let folder = try HooksFolder(["count.lua": "on_record_create('posts', function(e) log.info('delivered') end)"])
        defer { folder.remove() }
        let configuration = ServerConfiguration(folder)
        let logs = LogCapture()
        do {
            let first = try MoonbaseServer(configuration: configuration, logger: LogCapture().logger)
            do {
                _ = try MoonbaseServer(configuration: configuration, logger: logs.logger)
                Issue.record("a second server on the same data folder must be refused")
            } catch let error as ServerError {
                #expect("\(error)".contains("in use by another moonbase process (pid \(getpid()))"))
                #expect("\(error)".contains("--data"))
            }
            #expect(first.adminToken == token)
        } // the first server is gone: its folder is free again
        #expect(logs.lines("taking up unfinished hook deliveries").isEmpty)
        _ = try MoonbaseServer(configuration: configuration, logger: logs.logger)
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
        var configuration = ServerConfiguration(folder)
        configuration.port = port
        do {
            try await MoonbaseServer(configuration: configuration, logger: LogCapture().logger).run()
            Issue.record("serving on a taken port must fail")
        } catch let error as ServerError {
            #expect(error.description == "port \(port) on 127.0.0.1 is already in use (another server?); choose another with --port")
        }
    }
}

@Suite struct EarlyAnswerTests {
    /// A client that sends `Connection: close` and writes its whole body before it reads gets its
    /// early answer (413 over the limit, 401 without a token) at once, not at its own timeout.
    @Test(arguments: [(true, "413"), (false, "401")])
    func earlyAnswersReachAClientThatWritesEverythingFirst(withToken: Bool, status: String) async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let configuration = ServerConfiguration(folder)
        let server = try MoonbaseServer(configuration: configuration, logger: LogCapture().logger)
        try await server.application().test(.live) { client in
            try await client.createCollection("posts")
            let port = try #require(client.port)
            let head = "POST /api/v1/collections/posts/records HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                + (withToken ? "Authorization: Bearer \(token)\r\n" : "")
                + "Content-Type: application/json\r\nContent-Length: \(16 << 20)\r\n\r\n"
            // On a thread of its own: blocking a cooperative thread could starve the server's handlers.
            let answer = try await withCheckedThrowingContinuation { continuation in
                Thread { continuation.resume(with: Result { try writeAllThenRead(port: port, head: head, bodyBytes: 16 << 20) }) }.start()
            }
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "got: \(answer.prefix(80))")
        }
        
    }
}

/// Connects to the loopback `port`, writes `head` and `bodyBytes` bytes of body, and only then
/// reads the answer. Socket timeouts (10 s) turn a stuck exchange into a failure, not a hang.
private func writeAllThenRead(port: Int, head: String, bodyBytes: Int) throws -> String {
    struct SocketFailure: Error { let step: String; let code: Int32 }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw SocketFailure(step: "connect", code: errno) }
    func sendAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketFailure(step: "send", code: errno) }
            sent += n
        }
    }
    try sendAll(Array(head.utf8))
    let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 1 << 20)
    for _ in 0..<(bodyBytes >> 20) { try sendAll(chunk) }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        answer += buffer[..<n]
    }
    return String(decoding: answer, as: UTF8.self)
}
