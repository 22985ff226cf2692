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

    @Test func listingFiltersByFieldEquality() async throws {
        try await withServer { client, _ in
            try await client.createCollection("orders")
            for body in [#"{"status":"paid","n":1,"vip":true}"#, #"{"status":"paid","n":2}"#, #"{"status":"open","n":"2"}"#,
                         #"{"status":"open, \"late\"","n":3,"note":null}"#] {
                _ = try await client.send(.post, "/api/v1/collections/orders/records", json: body)
            }
            func ns(_ query: String) async throws -> [JSONValue?] {
                let page = try await client.send(.get, "/api/v1/collections/orders/records?\(query)")
                #expect(page.status == .ok, "\(query): \(String(describing: page.body))")
                guard case .array(let items)? = page.body?["items"] else { return [] }
                return items.map { $0["n"] }
            }
            #expect(try await ns("filter[status]=paid") == [1, 2])
            #expect(try await ns("filter%5Bstatus%5D=%22paid%22&sort=-created") == [2, 1], "encoded brackets, a quoted string")
            #expect(try await ns("filter[n]=2") == [2], "a number matches the number")
            #expect(try await ns("filter[n]=%222%22") == ["2"], "a quoted string matches the string")
            #expect(try await ns("filter[vip]=true") == [1])
            #expect(try await ns("filter[vip]=null") == [2, "2", 3], "null: null or missing")
            #expect(try await ns("filter[status]=open,%20%22late%22") == [3], "text that is not JSON is itself")
            #expect(try await ns("filter[status]=paid&filter[n]=1") == [1])
            #expect(try await ns("filter[status]=shipped") == [])
            #expect(try await ns("_=123&x") == [1, 2, "2", 3], "unknown parameters are ignored")
            for (bad, message) in [("filter[]=1", "filter[FIELD]=VALUE"), ("filter[a]=%7B%7D", "a value is a string"),
                                   ("filter[n]=1&filter[n]=2", "filter[n] is given more than once"),
                                   ("page=1&page=2", "page is given more than once"), ("filter[a%22b]=1", "no double quote")] {
                let response = try await client.send(.get, "/api/v1/collections/orders/records?\(bad)")
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.body?["error"]?.string?.contains(message) == true, "\(bad): \(String(describing: response.body))")
            }
        }
    }
}
