import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// `GET /metrics` (SPEC section 16): the exposition is parsed, never grepped.
@Suite struct MetricsTests {
    static let hooks = [
        "count.lua": "on_record_create('posts', function(e) end, {name = 'counted'})",
        "fail.lua": "on_record_create('posts', function(e) error('downstream is down') end, {name = 'failing'})",
        "check.lua": "before_record_create('posts', function(e) if e.data.bad then error('bad post') end end, {name = 'check'})",
    ]

    @Test func countsHandlersDeliveriesRequestsAndCommits() async throws {
        try await withServer(hooks: Self.hooks) { client, server in
            try await client.createCollection("posts")
            for n in 1...5 {
                #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":\#(n)}"#).status == .created)
            }
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/nosuchid").status == .notFound)
            await server.waitForDeliveries()

            let scraped = try await client.scrape()
            #expect(scraped.value("moonbase_hook_handler_calls_total", ["handler": "counted", "file": "hooks/count.lua"]) == 5)
            #expect(scraped.value("moonbase_hook_handler_errors_total", ["handler": "counted", "file": "hooks/count.lua"]) == 0)
            #expect(scraped.value("moonbase_hook_handler_calls_total", ["handler": "failing", "file": "hooks/fail.lua"]) == 5)
            #expect(scraped.value("moonbase_hook_handler_errors_total", ["handler": "failing", "file": "hooks/fail.lua"]) == 5)
            #expect(scraped.value("moonbase_hook_handler_duration_seconds_count", ["handler": "counted", "file": "hooks/count.lua"]) == 5)
            #expect(scraped.value("moonbase_hook_handler_duration_seconds_bucket", ["handler": "counted", "file": "hooks/count.lua", "le": "+Inf"]) == 5)
            #expect(scraped.value("moonbase_deliveries_total", ["status": "succeeded"]) == 5)
            #expect(scraped.value("moonbase_deliveries_total", ["status": "dead"]) == 5)
            #expect(scraped.value("moonbase_deliveries_total", ["status": "failed"]) == 0)
            #expect(scraped.value("moonbase_delivery_dead_letters_total", [:]) == 5)
            #expect(scraped.value("moonbase_delivery_backlog_events", [:]) == 0)
            #expect(scraped.value("moonbase_delivery_spills_total", [:]) == 0)
            let records = "/api/v1/collections/{collection}/records"
            #expect(scraped.value("moonbase_http_requests_total", ["route": records, "method": "POST", "status": "201"]) == 5)
            #expect(scraped.value("moonbase_http_requests_total", ["route": records + "/{id}", "method": "GET", "status": "404"]) == 1)
            #expect(scraped.value("moonbase_http_request_duration_seconds_count", ["route": records, "method": "POST", "status": "201"]) == 5)
            #expect(scraped.value("moonbase_node_info", ["node": "127.0.0.1:8090", "version": MoonbaseServer.version]) == 1)
            // Five record writes and the collection, each committed (and counted) once, in
            // however many transactions; plus the attempts' records.
            let committed = try #require(scraped.value("moonbase_store_commit_batch_size_sum", [:]))
            #expect(committed >= 6)

            // A retry through the API, and a scrape that counts the previous one.
            let dead = try await client.send(.get, "/api/v1/hooks/deliveries?status=dead&limit=1")
            guard case .array(let items)? = dead.body, let first = items.first else { Issue.record("no dead delivery"); return }
            let id = try #require(first["id"]).serializedString()
            #expect(try await client.send(.post, "/api/v1/hooks/deliveries/\(id)/retry").status == .accepted)
            await server.waitForDeliveries()
            let second = try await client.scrape()
            #expect(second.value("moonbase_deliveries_total", ["status": "retried"]) == 1)
            #expect(second.value("moonbase_deliveries_total", ["status": "dead"]) == 6)
            #expect(second.value("moonbase_hook_handler_calls_total", ["handler": "failing", "file": "hooks/fail.lua"]) == 6)
            #expect(second.value("moonbase_http_requests_total", ["route": "/metrics", "method": "GET", "status": "200"]) == 1)
        }
    }

    @Test func beforeHandlersAreCountedToo() async throws {
        try await withServer(hooks: Self.hooks) { client, _ in
            try await client.createCollection("posts")
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"bad":true}"#).status != .created)
            #expect(try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"bad":false}"#).status == .created)
            let scraped = try await client.scrape()
            #expect(scraped.value("moonbase_hook_handler_calls_total", ["handler": "check", "file": "hooks/check.lua"]) == 2)
            #expect(scraped.value("moonbase_hook_handler_errors_total", ["handler": "check", "file": "hooks/check.lua"]) == 1)
            // Its time is its request's: no handler histogram that would stay empty.
            #expect(!scraped.samples.contains { $0.name.hasPrefix("moonbase_hook_handler_duration") && $0.labels["handler"] == "check" })
        }
    }

    @Test func theAdminTokenIsRequiredUnlessPublic() async throws {
        try await withServer { client, _ in
            #expect(try await client.send(.get, "/metrics", headers: [:]).status == .unauthorized)
            #expect(try await client.send(.get, "/metrics", headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
            let scraped = try await client.scrape()
            #expect(scraped.value("moonbase_http_requests_total", ["route": "/metrics", "method": "GET", "status": "401"]) == 2)
        }
        try await withServer(configure: { $0.metricsPublic = true }) { client, _ in
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
        }
    }

    /// `serve --metrics-public` on port 0: the exposition needs no token and names the node by
    /// the port it got.
    @Test func servePublicMetricsNamingTheNode() async throws {
        let folder = try HooksFolder(Self.hooks)
        defer { folder.remove() }
        let data = (folder.path as NSString).deletingLastPathComponent
        let server = try CrashTests.Server(data: data + "/data", hooks: folder.path, log: data + "/serve.log", extra: ["--metrics-public"])
        defer { server.terminate() }
        let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(server.port)/metrics")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let scraped = try Exposition(String(decoding: body, as: UTF8.self))
        #expect(scraped.value("moonbase_node_info", ["node": "127.0.0.1:\(server.port)", "version": MoonbaseServer.version]) == 1)
        #expect(scraped.samples.filter { $0.name == "moonbase_node_info" }.count == 1)
    }

    /// Many records, ids and unknown paths add no series: labels are route patterns and names.
    @Test func labelsStayBounded() async throws {
        try await withServer(hooks: Self.hooks) { client, server in
            try await client.createCollection("posts")
            func burst(_ count: Int) async throws {
                for n in 0..<count {
                    let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":\#(n)}"#)
                    let id = try #require(created.body?["id"]?.string)
                    #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").status == .ok)
                    #expect(try await client.send(.get, "/no/such/path/\(id)").status == .notFound)
                    let invented = try #require(HTTPRequest.Method("BREW\(n)"))
                    _ = try await client.execute(uri: "/api/v1/collections/posts/records/\(id)", method: invented, headers: auth)
                }
                await server.waitForDeliveries()
            }
            try await burst(1)
            let before = try await client.scrape().series
            try await burst(40)
            let after = try await client.scrape().series
            // Only the first scrape's own request series are new (it was not yet counted when
            // it was taken).
            #expect(after.subtracting(before).allSatisfy { $0.contains("route=\"/metrics\"") }, "\(after.subtracting(before))")
            #expect(!after.contains { $0.contains("/no/such") || $0.contains("BREW") })
        }
    }
}

/// A parsed Prometheus text exposition.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample] = []

    /// Each series as `name{labels}` with labels sorted, for comparing sets of series.
    var series: Set<String> {
        Set(samples.map { sample in
            sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
        })
    }

    /// The value of the one sample with exactly these labels; nil when there is none.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        let found = samples.filter { $0.name == name && $0.labels == labels }
        return found.count == 1 ? found[0].value : nil
    }

    struct Malformed: Error, CustomStringConvertible {
        var line: String
        var description: String { "malformed exposition line: \(line)" }
    }

    /// Parses `name{label="value",…} value` lines; `#` lines are comments.
    init(_ text: String) throws {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var rest = Substring(line)
            guard let nameEnd = rest.firstIndex(where: { $0 == "{" || $0 == " " }) else { throw Malformed(line: String(line)) }
            let name = String(rest[..<nameEnd])
            rest = rest[nameEnd...]
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)] == "\"" else { throw Malformed(line: String(line)) }
                    let key = String(rest[..<equals])
                    rest = rest[rest.index(equals, offsetBy: 2)...]
                    var value = ""
                    while let character = rest.first, character != "\"" {
                        if character == "\\", let escaped = rest.dropFirst().first {
                            value.append(escaped == "n" ? "\n" : escaped)
                            rest = rest.dropFirst(2)
                        } else {
                            value.append(character)
                            rest = rest.dropFirst()
                        }
                    }
                    guard !rest.isEmpty else { throw Malformed(line: String(line)) }
                    rest = rest.dropFirst()
                    if rest.first == "," { rest = rest.dropFirst() }
                    labels[key] = value
                }
                rest = rest.dropFirst()
            }
            guard let value = Double(rest.trimmingPrefix(" ")) else { throw Malformed(line: String(line)) }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }
}

extension TestClientProtocol {
    /// `GET /metrics` with the admin token, parsed.
    func scrape() async throws -> Exposition {
        let response = try await execute(uri: "/metrics", method: .get, headers: auth)
        #expect(response.status == .ok)
        return try Exposition(String(buffer: response.body))
    }
}
