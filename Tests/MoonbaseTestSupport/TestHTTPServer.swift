import Hummingbird
import MoonbaseJSON
import NIOCore

/// Runs `body` with the port of a fresh test server on 127.0.0.1 (the endpoints hooks call in
/// tests: JSON, echo, webhook receiver, pauses, slow, oversized, redirects), then stops the server.
public func withTestServer(_ body: @Sendable (Int) async throws -> Void) async throws {
    try await withHTTPServer(router: testRouter(), body)
}

/// Runs `body` with the port of a server on 127.0.0.1 answering with `router`, then stops it.
public func withHTTPServer(router: Router<BasicRequestContext>, _ body: @Sendable (Int) async throws -> Void) async throws {
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        try await body(port)
        group.cancelAll()
    }
}

private func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(bytes: value.serialized()))
    )
}

private func testRouter() -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/json") { _, _ in
        jsonResponse(["hello": "world", "n": 42])
    }
    // Reports what arrived, so tests can check what the client sent.
    let echo: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
        let body = try await request.body.collect(upTo: 1 << 20)
        return jsonResponse([
            "method": .string(request.method.rawValue),
            "content_type": .string(request.headers[.contentType] ?? ""),
            "user_agent": .string(request.headers[.userAgent] ?? ""),
            "body": .string(String(buffer: body)),
        ])
    }
    router.post("/echo", use: echo)
    // What a webhook receiver sees: the Standard Webhooks headers and the exact body.
    router.post("/webhook") { request, _ in
        let body = try await request.body.collect(upTo: 1 << 20)
        let header = { (name: String) in JSONValue.string(request.headers[.init(name)!] ?? "") }
        return jsonResponse([
            "id": header("webhook-id"), "timestamp": header("webhook-timestamp"), "signature": header("webhook-signature"),
            "content_type": header("content-type"), "body": .string(String(buffer: body)),
        ])
    }
    router.get("/wait") { _, _ in
        try await Task.sleep(for: .milliseconds(500))
        return jsonResponse(["waited": true])
    }
    // Answers after `ms` milliseconds: a handler that takes wall-clock time without using CPU.
    router.get("/pause/:ms") { _, context in
        try await Task.sleep(for: .milliseconds(context.parameters.get("ms", as: Int.self) ?? 0))
        return jsonResponse(["paused": true])
    }
    router.put("/echo", use: echo)
    router.get("/headers") { request, _ in
        var headers: HTTPFields = [.contentType: "text/plain"]
        headers[.init("X-Echo")!] = request.headers[.init("X-Token")!] ?? "missing"
        headers[values: .init("X-Multi")!] = ["a", "b"]
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "ok")))
    }
    router.get("/fail") { _, _ in
        Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: "boom")))
    }
    router.get("/slow") { _, _ in
        try await Task.sleep(for: .seconds(2))
        return "late"
    }
    // Sends the head at once, then stalls: past AsyncHTTPClient's own deadline, which ends at the head.
    router.get("/stall") { _, _ in
        Response(status: .ok, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "partial"))
            try await Task.sleep(for: .seconds(2))
            try await writer.finish(nil)
        })
    }
    router.get("/big") { _, _ in
        Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)))
    }
    // No Content-Length: the cap must trip while streaming.
    router.get("/big-chunked") { _, _ in
        Response(status: .ok, body: ResponseBody { writer in
            for _ in 0..<64 {
                try await writer.write(ByteBuffer(repeating: UInt8(ascii: "x"), count: 1 << 10))
            }
            try await writer.finish(nil)
        })
    }
    router.get("/redirect") { _, _ in
        Response(status: .found, headers: [.location: "/json"])
    }
    router.get("/hop/:n") { _, context in
        let n = context.parameters.get("n", as: Int.self) ?? 0
        return Response(status: .found, headers: [.location: "/hop/\(n + 1)"])
    }
    router.get("/binary") { _, _ in
        Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: [0xFF, 0xFE, 0x41])))
    }
    router.get("/badjson") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(string: "{nope")))
    }
    return router
}
