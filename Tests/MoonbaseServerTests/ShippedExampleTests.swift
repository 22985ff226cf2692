import Foundation
import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// The examples of hooks/ that reach out (webhooks.lua, search.lua, counters.lua), on a real
/// server with a local HTTP endpoint.
@Suite(.serialized) struct ShippedExampleTests {
    static func example(_ name: String) throws -> String {
        let hooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../hooks").standardized
        return try String(contentsOf: hooks.appendingPathComponent(name), encoding: .utf8)
    }

    @Test func webhooksSendsASignedOrderOrLogsWhenUnconfigured() async throws {
        let logs = LogCapture()
        try await withTestServer { port in
            try await withServer(hooks: ["webhooks.lua": try Self.example("webhooks.lua")], logs: logs) { client, server in
                try await client.createCollection("orders")
                unsetenv("FULFILLMENT_URL")
                _ = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"sku":"moon-1"}"#)
                await server.waitForDeliveries()
                #expect(logs.lines("FULFILLMENT_URL is not set: order not sent").count == 1)

                setenv("FULFILLMENT_URL", "http://127.0.0.1:\(port)/webhook", 1)
                setenv("FULFILLMENT_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1)
                defer { unsetenv("FULFILLMENT_URL"); unsetenv("FULFILLMENT_SECRET") }
                let order = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"sku":"moon-2"}"#)
                await server.waitForDeliveries()
                let sent = try #require(logs.lines("order sent to fulfillment").first)
                #expect(sent.metadata["order"] == order.body?["id"]?.string && sent.metadata["status"] == "200")
                #expect(server.hooks.catalog.statsSnapshot()[0].errors == 0)
            }
        }
    }

    @Test func searchKeepsTheIndexInStepWithProducts() async throws {
        try await withServer(hooks: ["search.lua": try Self.example("search.lua")]) { client, server in
            try await client.createCollection("products")
            try await client.createCollection("search_index")
            let lamp = try await client.send(.post, "/api/v1/collections/products/records", json: #"{"name":"Moon Lamp","brand":"Luna","price":30}"#)
            let globe = try await client.send(.post, "/api/v1/collections/products/records", json: #"{"name":"Globe","description":"A Small Earth"}"#)
            let lampID = try #require(lamp.body?["id"]?.string), globeID = try #require(globe.body?["id"]?.string)
            _ = try await client.send(.patch, "/api/v1/collections/products/records/\(lampID)", json: #"{"name":"Full Moon Lamp"}"#)
            _ = try await client.send(.delete, "/api/v1/collections/products/records/\(globeID)")
            await server.waitForDeliveries()
            let index = try await client.send(.get, "/api/v1/collections/search_index/records")
            guard case .array(let entries)? = index.body?["items"] else { Issue.record("no index"); return }
            #expect(entries.count == 1)
            #expect(entries.first?["product_id"]?.string == lampID)
            #expect(entries.first?["text"] == "full moon lamp luna" && entries.first?["price"] == 30)
            #expect(server.hooks.catalog.statsSnapshot()[0].errors == 0)
        }
    }
}

extension ShippedExampleTests {
    @Test func countersKeepPostsPerAuthorThroughCreatesUpdatesAndDeletes() async throws {
        try await withServer(hooks: ["counters.lua": try Self.example("counters.lua")]) { client, server in
            try await client.createCollection("posts")
            try await client.createCollection("stats")
            var ids: [String] = []
            try await withThrowingTaskGroup(of: String?.self) { group in
                for author in ["ada", "ada", "ada", "bob", "ada", "bob"] {
                    group.addTask {
                        try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"author":"\#(author)"}"#).body?["id"]?.string
                    }
                }
                for try await id in group { if let id { ids.append(id) } }
            }
            #expect(ids.count == 6)
            await server.waitForDeliveries()
            func counts() async throws -> [String: JSONValue] {
                let stats = try await client.send(.get, "/api/v1/collections/stats/records?per_page=100")
                guard case .array(let items)? = stats.body?["items"] else { return [:] }
                return Dictionary(items.map { ($0["author"]?.string ?? "?", $0["posts"] ?? .null) }, uniquingKeysWith: { _, _ in "duplicate" })
            }
            #expect(try await counts() == ["ada": 4, "bob": 2], "concurrent first posts of one author made one stats record")
            let adas = try await client.send(.get, "/api/v1/collections/posts/records?per_page=100")
            guard case .array(let posts)? = adas.body?["items"] else { Issue.record("no posts"); return }
            let adaPosts = posts.filter { $0["author"] == "ada" }.compactMap { $0["id"]?.string }
            _ = try await client.send(.patch, "/api/v1/collections/posts/records/\(adaPosts[0])", json: #"{"author":"cy"}"#)
            _ = try await client.send(.delete, "/api/v1/collections/posts/records/\(adaPosts[1])")
            await server.waitForDeliveries()
            #expect(try await counts() == ["ada": 2, "bob": 2, "cy": 1])
            #expect(server.hooks.catalog.statsSnapshot()[0].errors == 0)
        }
    }
}

/// Hooks waiting on the network overlap: many handlers wait at once on two Lua states, and the
/// server keeps answering meanwhile. (A time bound: `make test` runs it on its own.)
@Suite struct HookNetworkTimingTests {
    @Test func twoHundredEventsWaitingHalfASecondEachFinishWithinThreeSeconds() async throws {
        let logs = LogCapture()
        try await withTestServer { port in
            try await withServer(hooks: ["wait.lua": """
                on_record_create("posts", function(e)
                  local response = assert(http.get("http://127.0.0.1:\(port)/wait"))
                  log.info("waited", {record = e.record_id, waited = tostring(response.json.waited)})
                end)
                """], logs: logs) { client, server in
                try await client.createCollection("posts")
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<200 {
                        group.addTask { _ = try await client.send(.post, "/api/v1/collections/posts/records", json: "{}") }
                    }
                    try await group.waitForAll()
                }
                let health = Task {
                    var answers: [Bool] = []
                    while !Task.isCancelled && answers.count < 1000 {
                        answers.append(try await client.send(.get, "/api/v1/health", headers: [:]).status == .ok)
                        try? await Task.sleep(for: .milliseconds(20)) // ends early once cancelled
                    }
                    return answers
                }
                await server.waitForDeliveries()
                let elapsed = ContinuousClock.now - started
                health.cancel()
                let answers = try await health.value
                #expect(logs.lines("waited").count == 200 && logs.lines("waited").allSatisfy { $0.metadata["waited"] == "true" })
                #expect(elapsed < .seconds(3), "200 handlers each waiting 500 ms on 2 Lua states overlap (took \(elapsed))")
                #expect(answers.count >= 5 && answers.allSatisfy { $0 }, "the server answered health checks while hooks waited")
            }
        }
    }
}
