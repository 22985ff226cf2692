import Foundation
import HookHost
import Hummingbird
import HummingbirdTesting
import LuaRuntime
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// `route(method, path, handler [, options])` (SPEC section 14), served in process.
@Suite struct LuaRouteTests {
    static let routes = """
        route("GET", "/hello", function(req) return {message = "hi"} end, {public = true})
        route("GET", "/items/{id}/notes/{note}", function(req)
          return {params = req.params, query = req.query, method = req.method, path = req.path, agent = req.headers["x-agent"]}
        end)
        route("POST", "/echo", function(req)
          return {status = 201, json = {body = req.body, json = req.json, type = req.headers["content-type"]}, headers = {["X-Echo"] = "yes"}}
        end)
        route("GET", "/text", function() return {body = "plain words"} end, {public = true})
        route("GET", "/html", function() return {body = "<p>hi</p>", headers = {["Content-Type"] = "text/html"}} end, {public = true})
        route("delete", "/nothing", function() end)
        route("GET", "/accepted", function() return {status = 202} end)
        route("GET", "/bare-status", function() return {status = "ok"} end)
        route("POST", "/refuse", function(req) reject("no " .. req.json.what) end)
        route("POST", "/teapot", function() reject("short and stout", 418) end)
        function broken(req) local t = nil; return t.field end
        route("GET", "/broken", broken)
        route("GET", "/loop", function() while true do end end)
        route("GET", "/bad-answer", function() return "a string" end)
        route("POST", "/orders", function(req) return {status = 201, json = records.create("orders", req.json)} end, {name = "take_order"})
        on_record_create("orders", function(e) log.info("order event", {id = e.record_id, sku = e.data.sku}) end)
        route("GET", "/", function() return {body = "home"} end, {public = true})
        """

    private func withRoutes(logs: LogCapture = LogCapture(), configure: (inout ServerConfiguration) -> Void = { _ in },
                            _ body: @Sendable (any TestClientProtocol, MoonbaseServer) async throws -> Void) async throws {
        try await withServer(hooks: ["routes.lua": Self.routes], logs: logs, configure: configure, body)
    }

    @Test func everyReturnConvention() async throws {
        try await withRoutes { client, _ in
            #expect(String(buffer: try await client.execute(uri: "/", method: .get).body) == "home")
            let hello = try await client.send(.get, "/hello", headers: [:])
            #expect(hello.status == .ok && hello.body == ["message": "hi"], "a bare table is JSON with 200")

            let text = try await client.execute(uri: "/text", method: .get)
            #expect(text.status == .ok && String(buffer: text.body) == "plain words")
            #expect(text.headers[.contentType] == "text/plain; charset=utf-8")
            let html = try await client.execute(uri: "/html", method: .get)
            #expect(html.headers[.contentType] == "text/html" && String(buffer: html.body) == "<p>hi</p>")

            let nothing = try await client.execute(uri: "/nothing", method: .delete, headers: auth)
            #expect(nothing.status == .noContent && nothing.body.readableBytes == 0, "nil is 204")
            let accepted = try await client.execute(uri: "/accepted", method: .get, headers: auth)
            #expect(accepted.status == .accepted && accepted.body.readableBytes == 0)
            let bare = try await client.send(.get, "/bare-status")
            #expect(bare.status == .ok && bare.body == ["status": "ok"], "a status that is no integer: a bare table")

            var headers = auth
            headers[.contentType] = "application/json"
            let echo = try await client.execute(uri: "/echo", method: .post, headers: headers, body: ByteBuffer(string: #"{"a":[1,2]}"#))
            #expect(echo.status == .created && echo.headers[HTTPFields.Element.Name("x-echo")!] == "yes")
            #expect(echo.headers[.contentType] == "application/json")
            #expect(try JSONValue.parse(Array(echo.body.readableBytesView)) == ["body": #"{"a":[1,2]}"#, "json": ["a": [1, 2]], "type": "application/json"])
        }
    }

    @Test func requestTableHasParamsQueryHeadersAndBodies() async throws {
        try await withRoutes(configure: { $0.maxBodyBytes = 64 }) { client, _ in
            var headers = auth
            headers[HTTPFields.Element.Name("X-Agent")!] = "tester"
            let item = try await client.send(.get, "/items/a%20b/notes/7?x=1&y=two%20words&x=2", headers: headers)
            #expect(item.status == .ok)
            #expect(item.body == ["params": ["id": "a b", "note": "7"], "query": ["x": "1", "y": "two words"], "method": "GET",
                                  "path": "/items/a b/notes/7", "agent": "tester"])

            var text = auth
            text[.contentType] = "text/plain"
            let plain = try await client.send(.post, "/echo", json: "not json", headers: text)
            #expect(plain.status == .created && plain.body?["body"] == "not json" && plain.body?["json"] == nil)
            let untyped = try await client.send(.post, "/echo", json: "[true]", headers: text)
            #expect(untyped.body?["json"] == [true], "a body that parses is given as json whatever its type says")

            var json = auth
            json[.contentType] = "application/json; charset=utf-8"
            let malformed = try await client.send(.post, "/echo", json: #"{"a":"#, headers: json)
            #expect(malformed.status == .badRequest && malformed.body?["error"]?.string?.hasPrefix("malformed JSON") == true)
            let large = try await client.send(.post, "/echo", json: String(repeating: "x", count: 65), headers: text)
            #expect(large.status == .contentTooLarge && large.body?["error"] == "request body is too large")
        }
    }

    @Test func rejectAndFailures() async throws {
        let logs = LogCapture()
        try await withRoutes(logs: logs) { client, server in
            let refused = try await client.send(.post, "/refuse", json: #"{"what":"tea"}"#)
            #expect(refused.status == .unprocessableContent && refused.body == ["error": "no tea"])
            let teapot = try await client.send(.post, "/teapot")
            #expect(teapot.status.code == 418 && teapot.body == ["error": "short and stout"])

            for path in ["/broken", "/bad-answer"] {
                let failed = try await client.execute(uri: path, method: .get, headers: auth)
                #expect(failed.status == .internalServerError && String(buffer: failed.body) == #"{"error":"hook failed"}"#,
                        "no file name, no detail: \(path)")
            }
            let failures = logs.lines("hook failed")
            #expect(failures.count == 2)
            #expect(failures.first?.metadata["file"] == "hooks/routes.lua" && failures.first?.metadata["line"] == "15")
            #expect(failures.first?.metadata["route"] == "GET /broken" && failures.first?.metadata["error"]?.contains("attempt to index") == true)
            #expect(failures.last?.metadata["error"]?.contains("a route must return a table") == true)

            let listing = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let routes)? = listing.body?.arrayFirst?["routes"] else { Issue.record("no routes listed"); return }
            let broken = try #require(routes.first { $0["path"] == "/broken" })
            #expect(broken["name"] == "broken" && broken["method"] == "GET" && broken["public"] == false && broken["line"] == 15)
            #expect(broken["calls"] == 1 && broken["errors"] == 1 && broken["last_error"]?.string?.contains("hooks/routes.lua:15:") == true)
            #expect(broken["latency_ms"]?["max"] != nil && broken["latency_ms"]?["mean"] != nil)
            let hello = try #require(routes.first { $0["path"] == "/hello" })
            #expect(hello["public"] == true && hello["calls"] == 0)
            #expect(server.hooks.catalog.handlers.count == 16)
        }
    }

    @Test func aLoopingRouteIsStoppedByItsBudgetWhileTheServerAnswers() async throws {
        try await withServer(hooks: ["routes.lua": Self.routes], limits: LuaLimits(instructions: 2_000_000, wallClock: .seconds(5), memoryBytes: 64 << 20)) { client, _ in
            async let looping = client.execute(uri: "/loop", method: .get, headers: auth)
            let health = try await client.send(.get, "/api/v1/health")
            #expect(health.status == .ok)
            let stopped = try await looping
            #expect(stopped.status == .internalServerError && String(buffer: stopped.body) == #"{"error":"hook failed"}"#)
        }
    }

    @Test func tokenUnlessPublicAnd405And404() async throws {
        try await withRoutes { client, _ in
            #expect(try await client.send(.get, "/accepted", headers: [:]).status == .unauthorized)
            #expect(try await client.send(.get, "/accepted", headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
            #expect(try await client.execute(uri: "/accepted", method: .get, headers: auth).status == .accepted)
            #expect(try await client.send(.get, "/hello", headers: [:]).status == .ok)

            let wrongMethod = try await client.send(.post, "/hello", headers: [:])
            #expect(wrongMethod.status == .methodNotAllowed && wrongMethod.body?["error"] == "method not allowed here; use GET")
            #expect(try await client.send(.put, "/items/1/notes/2").status == .methodNotAllowed)
            for headers in [auth, [:]] {
                #expect(try await client.send(.get, "/nope", headers: headers).status == .notFound)
                #expect(try await client.send(.get, "/hello/more", headers: headers).status == .notFound)
                #expect(try await client.send(.get, "/api/v1/nope", headers: headers).status == .notFound)
            }
        }
    }

    @Test func aRouteWritesThroughRecordsAndFiresAfterHooks() async throws {
        let logs = LogCapture()
        try await withRoutes(logs: logs) { client, server in
            try await client.createCollection("orders")
            let order = try await client.send(.post, "/orders", json: #"{"sku":"moon-1"}"#)
            #expect(order.status == .created && order.body?["sku"] == "moon-1" && order.body?["collection"] == "orders")
            await server.waitForDeliveries()
            #expect(logs.lines("order event").map { $0.metadata["id"] } == [order.body?["id"]?.string])
            let missing = try await client.execute(uri: "/orders", method: .post, headers: auth, body: ByteBuffer(string: "{}"))
            #expect(missing.status == .created, "an empty object is a record too")
        }
    }

    @Test(arguments: [
        ("{status = 99}", "a route's status must be from 200 to 599 (got 99)"),
        ("{json = {}, body = 'x'}", "a route answers with json or with body, not both"),
        ("{body = {1, 2}}", "a route's body must be a string (got a table)"),
        ("{headers = {['bad name'] = 'x'}, body = ''}", "header 'bad name' is not a valid HTTP header"),
        ("{headers = {x = 'a\\nb'}, body = ''}", "header 'x' is not a valid HTTP header"),
        ("{headers = {x = true}, body = ''}", "header 'x' must be a string or an integer"),
        ("{headers = 'x', status = 200}", "a route's headers must be a table of name = value"),
        ("42", "a route must return a table"),
        ("{f = function() end}", "a route's answer cannot be sent"),
    ])
    func answersThatCannotBeSentAre500WithTheReasonInTheLog(answer: String, reason: String) async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["bad.lua": "route('GET', '/bad', function() return \(answer) end)"], logs: logs) { client, _ in
            let response = try await client.execute(uri: "/bad", method: .get, headers: auth)
            #expect(response.status == .internalServerError && String(buffer: response.body) == #"{"error":"hook failed"}"#)
            let logged = logs.lines("hook failed").first?.metadata["error"] ?? ""
            #expect(logged.hasPrefix("hooks/bad.lua:1: ") && logged.contains(reason), "\(logged)")
        }
    }
}

extension JSONValue {
    fileprivate var arrayFirst: JSONValue? {
        if case .array(let items) = self { return items.first }
        return nil
    }
}
