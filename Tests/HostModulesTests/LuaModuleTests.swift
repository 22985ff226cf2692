import Crypto
import Foundation
import HookHost
import HostModules
import LuaRuntime
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// `http`, `webhook` and `crypto` as hook scripts use them, against a local server.
@Suite struct LuaModuleTests {
    /// A wall-clock budget no loaded test machine reaches: these tests are about what the modules
    /// do, not about time (the budget's own tests set theirs).
    static let roomy = LuaLimits(instructions: LuaLimits.default.instructions, wallClock: .seconds(60), memoryBytes: LuaLimits.default.memoryBytes)

    /// Loads `source` as a hook file with the modules, delivers one `posts` create event (id
    /// `evt_1`) to its handlers and returns what they logged as "result" lines, and their outcomes.
    func run(_ source: String, port: Int, limits: LuaLimits = Self.roomy,
             configuration: OutboundHTTPConfiguration = OutboundHTTPConfiguration(userAgent: "moonbase-test/1"))
        async throws -> (results: [[String: String]], outcomes: [HookOutcome]) {
        let folder = try HooksFolder(["test.lua": "local base = 'http://127.0.0.1:\(port)'\n" + source])
        defer { folder.remove() }
        let logs = LogCapture()
        var outcomes: [HookOutcome] = []
        try await withClient(configuration) { http in
            let hooks = try folder.load(states: 1, limits: limits, modules: reachingOutModules(using: http), logs: logs)
            #expect(hooks.catalog.files.first?.error == nil)
            let pool = HookPool(hooks)
            outcomes = await pool.deliver(event(), to: Array(hooks.catalog.handlers.indices), urgent: true)
            await pool.shutdown()
        }
        return (logs.lines("result").map(\.metadata), outcomes)
    }

    @Test func getAndPostWithJSONHeadersAndStatuses() async throws {
        try await withTestServer { port in
            let (results, outcomes) = try await run("""
                on_record_create("posts", function(e)
                  local got = http.get(base .. "/json")
                  local posted = http.post(base .. "/echo", {json = {title = e.data.title}})
                  local headed = http.request{url = base .. "/headers", headers = {["X-Token"] = "t0k"}}
                  local failed = http.get(base .. "/fail")
                  log.info("result", {got = got.status .. " " .. got.json.hello, posted = posted.json.body,
                    ctype = posted.json.content_type, agent = posted.json.user_agent, echo = headed.headers["x-echo"],
                    failed = failed.status .. " " .. failed.body})
                end)
                """, port: port)
            #expect(outcomes.map(\.error?.message) == [nil])
            let result = try #require(results.first)
            #expect(result["got"] == "200 world" && result["posted"] == #"{"title":"Hello"}"#)
            #expect(result["ctype"] == "application/json" && result["agent"] == "moonbase-test/1")
            #expect(result["echo"] == "t0k" && result["failed"] == "500 boom")
        }
    }

    @Test func networkFailuresAreNilAndAMessageAndBadRequestsRaise() async throws {
        try await withTestServer { port in
            let (results, outcomes) = try await run("""
                on_record_create("posts", function(e)
                  local slow, timeout = http.get(base .. "/slow", {timeout_ms = 200})
                  local refused, why = http.get("http://127.0.0.1:1/")
                  local big, size = http.get(base .. "/big")
                  log.info("result", {slow = tostring(slow), timeout = timeout, refused = tostring(refused), why = why,
                                      big = tostring(big), size = size})
                end)
                on_record_create("posts", function(e) http.request{url = "ftp://example.com"} end)
                on_record_create("posts", function(e) http.request("not a table") end)
                """, port: port, configuration: OutboundHTTPConfiguration(userAgent: "moonbase-test/1", maxResponseBytes: 1024))
            let result = try #require(results.first)
            #expect(result["slow"] == "nil" && result["timeout"] == "timeout after 200 ms")
            #expect(result["refused"] == "nil" && result["why"]?.contains("connection refused") == true)
            #expect(result["big"] == "nil" && result["size"] == "response too large (more than 1024 bytes)")
            #expect(outcomes[0].error == nil)
            #expect(outcomes[1].error?.message.hasPrefix("hooks/test.lua:9: http.request: ") == true, "\(outcomes[1].error?.message ?? "")")
            #expect(outcomes[2].error?.message == "hooks/test.lua:10: http.request: bad argument #1 (request table expected, got string)")
        }
    }

    @Test func theWaitCountsAgainstTheHandlersWallClock() async throws {
        try await withTestServer { port in
            let (_, outcomes) = try await run(#"on_record_create("posts", function(e) http.get(base .. "/slow") end)"#, port: port,
                                              limits: LuaLimits(instructions: 1_000_000, wallClock: .milliseconds(300), memoryBytes: 0))
            #expect(outcomes.first?.error?.kind == .budget)
        }
    }

    @Test func webhooksAreSignedTheStandardWebhooksWay() async throws {
        try await withTestServer { port in
            let (results, outcomes) = try await run("""
                on_record_create("posts", function(e)
                  local response = assert(webhook.send(base .. "/webhook", {type = e.type, title = e.data.title}, {secret = "s3cret"}))
                  log.info("result", response.json)
                end)
                """, port: port)
            #expect(outcomes.first?.error == nil)
            let seen = try #require(results.first)
            let id = try #require(seen["id"]), timestamp = try #require(seen["timestamp"]), body = try #require(seen["body"])
            #expect(id == "evt_1", "webhook-id is the event's id")
            #expect(body == #"{"title":"Hello","type":"record.created"}"# && seen["content_type"] == "application/json")
            let now = Int64(Date().timeIntervalSince1970)
            #expect(abs((Int64(timestamp) ?? 0) - now) < 60)
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: Array("s3cret".utf8)))
            #expect(seen["signature"] == "v1," + Data(mac).base64EncodedString(), "an independent HMAC agrees")
        }
    }

    @Test func cryptoDigestsAndEncodings() async throws {
        try await withTestServer { port in
            let (results, outcomes) = try await run("""
                on_record_create("posts", function(e)
                  local raw = crypto.hmac_sha256("key", "The quick brown fox jumps over the lazy dog", "raw")
                  log.info("result", {
                    hex = crypto.hmac_sha256("key", "The quick brown fox jumps over the lazy dog"),
                    b64 = crypto.hmac_sha256("key", "The quick brown fox jumps over the lazy dog", "base64"),
                    raw_hex = crypto.hex_encode(raw), raw_len = tostring(#raw),
                    sha = crypto.sha256("abc"),
                    round = crypto.base64_decode(crypto.base64_encode("moon\\0base")) == "moon\\0base" and "same" or "different",
                    bad = select(2, crypto.base64_decode("***")),
                  })
                end)
                on_record_create("posts", function(e) crypto.sha256("x", "octal") end)
                """, port: port)
            let result = try #require(results.first)
            #expect(result["hex"] == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
            #expect(result["raw_hex"] == result["hex"] && result["raw_len"] == "32")
            #expect(result["b64"] == "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=")
            #expect(result["sha"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(result["round"] == "same" && result["bad"] == "crypto.base64_decode: not valid base64")
            #expect(outcomes[1].error?.message.contains(#"crypto.sha256: encoding must be "hex", "base64" or "raw""#) == true)
        }
    }
}
