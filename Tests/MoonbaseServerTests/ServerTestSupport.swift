import Foundation
import HookHost
import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport

let token = "test-token"
let auth: HTTPFields = [.authorization: "Bearer \(token)"]

/// A server on a fresh data folder with the given hook files, tested in process.
func withServer(hooks files: [String: String] = [:], limits: LuaLimits = .default, logs: LogCapture = LogCapture(),
                configure: (inout ServerConfiguration) -> Void = { _ in },
                _ body: @Sendable (any TestClientProtocol, MoonbaseServer) async throws -> Void) async throws {
    let folder = try HooksFolder(files)
    defer { folder.remove() }
    var configuration = ServerConfiguration()
    configuration.dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
    configuration.hooksDirectory = folder.path
    configuration.adminToken = token
    configuration.hookWorkers = 2
    configuration.limits = limits
    configure(&configuration)
    let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
    let app = Application(router: server.router())
    try await app.test(.router) { client in
        try await body(client, server)
    }
    await server.hooks.shutdown()
}

extension TestClientProtocol {
    /// Sends a request with the admin token and a JSON body; returns status and parsed body.
    func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = auth) async throws -> (status: HTTPResponse.Status, body: JSONValue?) {
        let response = try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        let bytes = Array(response.body.readableBytesView)
        return (response.status, bytes.isEmpty ? nil : try JSONValue.parse(bytes))
    }

    /// Creates a collection and returns nothing; fails the test if it cannot.
    func createCollection(_ name: String) async throws {
        let (status, _) = try await send(.post, "/api/v1/collections", json: #"{"name":"\#(name)"}"#)
        guard status == .created else { throw APIError(status, "could not create \(name)") }
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}
