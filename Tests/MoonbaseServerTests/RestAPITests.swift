import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import Testing

@Suite struct RestAPITests {
    @Test func healthNeedsNoTokenEverythingElseDoes() async throws {
        try await withServer { client, _ in
            let health = try await client.send(.get, "/api/v1/health", headers: [:])
            #expect(health.status == .ok && health.body == ["status": "ok"])
            let missing = try await client.send(.get, "/api/v1/collections", headers: [:])
            #expect(missing.status == .unauthorized && missing.body?["error"]?.string?.contains("missing admin token") == true)
            let wrong = try await client.send(.get, "/api/v1/collections", headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .unauthorized && wrong.body == ["error": "wrong admin token"])
            let longer = try await client.send(.get, "/api/v1/collections", headers: [.authorization: "Bearer \(token)x"])
            #expect(longer.status == .unauthorized)
            let notBearer = try await client.send(.get, "/api/v1/hooks", headers: [.authorization: token])
            #expect(notBearer.status == .unauthorized)
            #expect(try await client.send(.get, "/api/v1/collections").status == .ok)
        }
    }

    /// A path that is no route is 404 whatever the token; a route asked with another method is 405.
    @Test func unknownPathsAre404AndOtherMethods405() async throws {
        try await withServer { client, _ in
            for headers in [HTTPFields(), auth, [.authorization: "Bearer nope"]] {
                for path in ["/", "/health", "/api/v1", "/api/v1/nope", "/api/v2/collections"] {
                    let response = try await client.send(.get, path, headers: headers)
                    #expect(response.status == .notFound, "\(path)")
                    #expect(response.body == ["error": "not found"], "\(path)")
                }
            }
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title":"x"}"#)
            let id = try #require(created.body?["id"]?.string)
            let put = try await client.send(.put, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"y"}"#)
            #expect(put.status == .methodNotAllowed)
            #expect(put.body?["error"]?.string == "method not allowed here; use GET, PATCH, DELETE")
            #expect(try await client.send(.delete, "/api/v1/health").status == .methodNotAllowed)
            #expect(try await client.send(.put, "/api/v1/collections/posts/records/\(id)", headers: [:]).status == .unauthorized)
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").body?["title"] == "x")
        }
    }

    @Test func collections() async throws {
        try await withServer { client, _ in
            let created = try await client.send(.post, "/api/v1/collections", json: #"{"name":"posts"}"#)
            #expect(created.status == .created && created.body?["name"] == "posts" && created.body?["created"]?.string != nil)
            #expect(try await client.send(.post, "/api/v1/collections", json: #"{"name":"posts"}"#).status == .conflict)
            for bad in [#"{"name":"Posts"}"#, #"{"name":"1posts"}"#, #"{"name":"my-posts"}"#, #"{"name":""}"#, #"{"title":"x"}"#, #"{"name":3}"#] {
                let response = try await client.send(.post, "/api/v1/collections", json: bad)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.body?["error"]?.string != nil)
            }
            try await client.createCollection("pages")
            let list = try await client.send(.get, "/api/v1/collections")
            guard case .array(let items)? = list.body else { Issue.record("not a list"); return }
            #expect(items.compactMap { $0["name"]?.string } == ["pages", "posts"])
            #expect(try await client.send(.delete, "/api/v1/collections/pages").status == .noContent)
            #expect(try await client.send(.delete, "/api/v1/collections/pages").status == .notFound)
        }
    }

    @Test func recordsCRUD() async throws {
        try await withServer { client, _ in
            try await client.createCollection("posts")
            let created = try await client.send(.post, "/api/v1/collections/posts/records",
                                                json: #"{"title":"Hello","id":"mine","created":"never","tags":["a"],"n":1}"#)
            #expect(created.status == .created)
            let body = try #require(created.body)
            let id = try #require(body["id"]?.string)
            #expect(id != "mine" && body["created"] != "never" && body["collection"] == "posts")
            #expect(body["title"] == "Hello" && body["tags"] == ["a"] && body["n"] == 1)

            let fetched = try await client.send(.get, "/api/v1/collections/posts/records/\(id)")
            #expect(fetched.status == .ok && fetched.body == body)

            let patched = try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: #"{"title":"Bye","extra":null}"#)
            #expect(patched.status == .ok)
            #expect(patched.body?["title"] == "Bye" && patched.body?["tags"] == ["a"] && patched.body?["extra"] == .null)
            #expect(patched.body?["created"] == body["created"])

            #expect(try await client.send(.delete, "/api/v1/collections/posts/records/\(id)").status == .noContent)
            #expect(try await client.send(.get, "/api/v1/collections/posts/records/\(id)").status == .notFound)
            #expect(try await client.send(.patch, "/api/v1/collections/posts/records/\(id)", json: "{}").status == .notFound)
            #expect(try await client.send(.delete, "/api/v1/collections/posts/records/\(id)").status == .notFound)
        }
    }

    @Test func badInputGetsAClearErrorAndChangesNothing() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 1024 }) { client, _ in
            try await client.createCollection("posts")
            let malformed = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"title": "#)
            #expect(malformed.status == .badRequest && malformed.body?["error"]?.string?.hasPrefix("malformed JSON") == true)
            let array = try await client.send(.post, "/api/v1/collections/posts/records", json: "[1,2]")
            #expect(array.status == .badRequest && array.body == ["error": "the body must be a JSON object"])
            let empty = try await client.send(.post, "/api/v1/collections/posts/records", json: "")
            #expect(empty.status == .badRequest)
            let huge = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"x":""# + String(repeating: "a", count: 4096) + #""}"#)
            #expect(huge.status == .contentTooLarge && huge.body == ["error": "request body is too large"])
            let unknown = try await client.send(.post, "/api/v1/collections/nope/records", json: "{}")
            #expect(unknown.status == .notFound && unknown.body?["error"]?.string?.contains("nope") == true)
            let list = try await client.send(.get, "/api/v1/collections/posts/records")
            #expect(list.body?["total_items"] == 0, "nothing was stored")
            #expect(try await client.send(.get, "/api/v1/nothing-here").status == .notFound)
        }
    }

    @Test func listingPagesAndSorts() async throws {
        try await withServer { client, _ in
            try await client.createCollection("posts")
            for n in 1...7 {
                _ = try await client.send(.post, "/api/v1/collections/posts/records", json: #"{"n":\#(n)}"#)
            }
            let first = try await client.send(.get, "/api/v1/collections/posts/records?page=1&per_page=3")
            #expect(first.body?["page"] == 1 && first.body?["per_page"] == 3 && first.body?["total_items"] == 7 && first.body?["total_pages"] == 3)
            guard case .array(let items)? = first.body?["items"] else { Issue.record("no items"); return }
            #expect(items.map { $0["n"] } == [1, 2, 3])
            let last = try await client.send(.get, "/api/v1/collections/posts/records?page=3&per_page=3&sort=-created")
            guard case .array(let lastItems)? = last.body?["items"] else { Issue.record("no items"); return }
            #expect(lastItems.map { $0["n"] } == [1])
            let defaults = try await client.send(.get, "/api/v1/collections/posts/records")
            #expect(defaults.body?["per_page"] == 30 && defaults.body?["page"] == 1)
            for bad in ["page=0", "page=x", "per_page=-1", "sort=title"] {
                #expect(try await client.send(.get, "/api/v1/collections/posts/records?\(bad)").status == .badRequest, "\(bad)")
            }
            #expect(try await client.send(.get, "/api/v1/collections/nope/records").status == .notFound)
        }
    }
}
