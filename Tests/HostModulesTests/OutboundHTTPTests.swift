import HostModules
import MoonbaseTestSupport
import MoonbaseJSON
import Testing

extension OutboundHTTPResult {
    var object: JSONObject? {
        if case .response(.object(let object)) = self { return object }
        return nil
    }

    var failureMessage: String? {
        if case .failure(let message) = self { return message }
        return nil
    }
}

extension JSONObject {
    func header(_ name: String) -> String? {
        guard case .object(let headers)? = self["headers"], case .string(let value)? = headers[name] else { return nil }
        return value
    }
}

@Suite struct OutboundHTTPTests {
    @Test func getDecodesJSONResponse() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let response = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/json")]).object)
                #expect(response["status"] == 200)
                #expect(response["json"] == ["hello": "world", "n": 42])
                #expect(response["body"] == #"{"hello":"world","n":42}"#)
                #expect(response.header("content-type") == "application/json; charset=utf-8")
            }
        }
    }

    @Test func postJSONSetsContentTypeAndUserAgent() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let sent: JSONValue = ["a": 1, "b": [true, .null, 1.5]]
                let response = try #require(await http.request([
                    "method": "post", "url": .string("http://127.0.0.1:\(port)/echo"), "json": sent,
                ]).object)
                let echo = try #require(response["json"])
                #expect(echo == [
                    "method": "POST", "content_type": "application/json",
                    "user_agent": "moonbase-test/1", "body": .string(sent.serializedString()),
                ])
            }
        }
    }

    @Test func scriptHeadersOverrideDefaults() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let response = try #require(await http.request([
                    "method": "PUT", "url": .string("http://127.0.0.1:\(port)/echo"), "body": "plain text",
                    "headers": ["content-type": "text/plain", "User-Agent": "custom/2"],
                ]).object)
                #expect(response["json"] == [
                    "method": "PUT", "content_type": "text/plain", "user_agent": "custom/2", "body": "plain text",
                ])

                let json = try #require(await http.request([
                    "method": "POST", "url": .string("http://127.0.0.1:\(port)/echo"), "json": [1, 2],
                    "headers": ["Content-Type": "application/vnd.api+json"],
                ]).object)
                #expect(json["json"]?.objectValue?["content_type"] == "application/vnd.api+json")
            }
        }
    }

    @Test func sendsHeadersAndReadsResponseHeaders() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let response = try #require(await http.request([
                    "url": .string("http://127.0.0.1:\(port)/headers"), "headers": ["X-Token": "abc"],
                ]).object)
                #expect(response.header("x-echo") == "abc")
                #expect(response.header("x-multi") == "a, b")
                #expect(response["json"] == nil)
            }
        }
    }

    @Test func errorStatusesAreResponses() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let missing = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/nothing-here")]).object)
                #expect(missing["status"] == 404)
                let failed = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/fail")]).object)
                #expect(failed["status"] == 500)
                #expect(failed["body"] == "boom")
            }
        }
    }

    @Test(arguments: ["/big", "/big-chunked"])
    func oversizedResponseIsAFailure(path: String) async throws {
        try await withTestServer { port in
            let configuration = OutboundHTTPConfiguration(userAgent: "moonbase-test/1", maxResponseBytes: 1024)
            try await withClient(configuration) { http in
                let result = await http.request(["url": .string("http://127.0.0.1:\(port)\(path)")])
                #expect(result == .failure("response too large (more than 1024 bytes)"))
                // The client stays usable after abandoning a body.
                #expect(await http.request(["url": .string("http://127.0.0.1:\(port)/json")]).object?["status"] == 200)
            }
        }
    }

    @Test func followsRedirectsUpToTheLimit() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let redirected = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/redirect")]).object)
                #expect(redirected["status"] == 200)
                #expect(redirected["json"] == ["hello": "world", "n": 42])
                let endless = await http.request(["url": .string("http://127.0.0.1:\(port)/hop/0")])
                #expect(endless == .failure("too many redirects (more than 5)"))
            }
        }
    }

    @Test func bodiesDecodeLossilyAndBadJSONIsOmitted() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let binary = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/binary")]).object)
                #expect(binary["body"] == "\u{FFFD}\u{FFFD}A")
                let bad = try #require(await http.request(["url": .string("http://127.0.0.1:\(port)/badjson")]).object)
                #expect(bad["body"] == "{nope")
                #expect(bad["json"] == nil)
            }
        }
    }

    @Test(arguments: [
        (JSONValue.string("http://x"), "request must be a table"),
        ([:], "url is required"),
        (["url": 5], "url must be a string"),
        (["url": "ftp://example.com/"], "unsupported url scheme 'ftp' (http or https only)"),
        (["url": "file:///etc/passwd"], "unsupported url scheme 'file' (http or https only)"),
        (["url": "not a url"], "invalid url 'not a url'"),
        (["url": "http://example.com", "method": "BREW"], "unsupported method 'BREW'"),
        (["url": "http://example.com", "method": 1], "method must be a string"),
        (["url": "http://example.com", "headers": ["X-N": 1]], "header 'X-N' must be a string"),
        (["url": "http://example.com", "headers": ["X": "a\r\nInjected: 1"]], "header 'X' contains a line break"),
        (["url": "http://example.com", "headers": ["bad name": "v"]], "invalid header name 'bad name'"),
        (["url": "http://example.com", "headers": "x"], "headers must be a table of strings"),
        (["url": "http://example.com", "body": 12], "body must be a string"),
        (["url": "http://example.com", "body": "a", "json": [:]], "body and json cannot both be given"),
        (["url": "http://example.com", "timeout_ms": 0], "timeout_ms must be an integer from 1 to 86400000"),
        (["url": "http://example.com", "timeout_ms": 1.5], "timeout_ms must be an integer from 1 to 86400000"),
        (["url": "http://example.com", "header": [:]], "unknown request field 'header'"),
    ] as [(JSONValue, String)])
    func invalidSpecs(spec: JSONValue, message: String) async throws {
        try await withClient { http in
            #expect(await http.request(spec) == .invalid(message))
        }
    }
}

extension JSONValue {
    var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }
}

/// The outbound client's time bounds: run on their own, after the other suites (`make test`), so
/// a loaded machine does not fail them.
@Suite struct OutboundHTTPTimingTests {
    /// `/slow` answers late; `/stall` sends its head at once and its body late (the timeout covers it).
    @Test(arguments: [("/slow", 200), ("/stall", 300)])
    func timeoutIsAFailure(path: String, milliseconds: Int) async throws {
        try await withTestServer { port in
            try await withClient { http in
                let start = ContinuousClock.now
                let result = await http.request(["url": .string("http://127.0.0.1:\(port)\(path)"), "timeout_ms": .int(Int64(milliseconds))])
                #expect(result == .failure("timeout after \(milliseconds) ms"))
                #expect(ContinuousClock.now - start < .seconds(1.5))
            }
        }
    }

    @Test func deadlineShorterThanTimeoutWins() async throws {
        try await withTestServer { port in
            try await withClient { http in
                let start = ContinuousClock.now
                let result = await http.request(
                    ["url": .string("http://127.0.0.1:\(port)/slow"), "timeout_ms": 5000],
                    deadline: start + .milliseconds(300)
                )
                let message = try #require(result.failureMessage)
                #expect(message.hasPrefix("timeout after "))
                #expect(!message.contains("5000"))
                #expect(ContinuousClock.now - start < .seconds(1.5))

                let late = await http.request(["url": .string("http://127.0.0.1:\(port)/json")], deadline: start)
                #expect(late == .failure("timeout after 0 ms"))
            }
        }
    }

    @Test func connectionRefusedIsAFailure() async throws {
        try await withClient { http in
            // Nothing listens on port 1.
            let start = ContinuousClock.now
            let message = try #require(await http.request(["url": "http://127.0.0.1:1/"]).failureMessage)
            #expect(message.hasPrefix("connection refused"))
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }
}
