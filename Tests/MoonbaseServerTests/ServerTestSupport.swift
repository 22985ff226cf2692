import Foundation
import HookHost
import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Synchronization

let token = "test-token"
let auth: HTTPFields = [.authorization: "Bearer \(token)"]

extension ServerConfiguration {
    /// Serving `folder`'s hooks from a data folder beside it, with the test token unless told
    /// otherwise (nil: the server generates one).
    init(_ folder: HooksFolder, token adminToken: String? = token) {
        self.init()
        dataDirectory = (folder.path as NSString).deletingLastPathComponent + "/data"
        hooksDirectory = folder.path
        self.adminToken = adminToken
    }
}

/// A server on a fresh data folder with the given hook files, tested in process, its services running.
func withServer(hooks files: [String: String] = [:], limits: LuaLimits = .default, logs: LogCapture = LogCapture(),
                configure: (inout ServerConfiguration) -> Void = { _ in },
                _ body: @Sendable (any TestClientProtocol, MoonbaseServer) async throws -> Void) async throws {
    let folder = try HooksFolder(files)
    defer { folder.remove() }
    var configuration = ServerConfiguration(folder)
    configuration.hookWorkers = 2
    configuration.limits = limits
    configure(&configuration)
    let server = try await MoonbaseServer.open(configuration: configuration, logger: logs.logger)
    try await server.application().test(.router) { client in
        try await body(client, server)
    }
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

/// Waits until `condition` holds (checking every 10 ms, for 5 s at most); false if it never did.
func eventually(_ condition: () async throws -> Bool) async rethrows -> Bool {
    for _ in 0..<500 {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// A clock the test moves by hand, so retry schedules of minutes take no time.
final class ManualClock: DeliveryClock {
    private struct State {
        var now: Int64 = 1_800_000_000_000
        var sleepers: [(deadline: Int64, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    func now() -> Int64 { state.withLock { $0.now } }

    func sleep(until deadline: Int64) async throws {
        await withCheckedContinuation { continuation in
            let due = state.withLock { state -> Bool in
                if deadline <= state.now { return true }
                state.sleepers.append((deadline, continuation))
                return false
            }
            if due { continuation.resume() }
        }
    }

    func advance(by milliseconds: Int64) {
        let due = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now += milliseconds
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.map(\.continuation)
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for continuation in due { continuation.resume() }
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
