import HookHost
import MoonbaseTestSupport
import Testing

/// `route(...)` registrations that are load errors (SPEC section 14).
@Suite struct HookRouteLoadingTests {
    @Test func routeLoadErrorsNameTheLaterFileAndLine() throws {
        let folder = try HooksFolder([
            "a.lua": "route('GET', '/x/{id}', function() end)\nroute('POST', '/x/{id}', function() end)",
            "b.lua": "local function receive(req) end\n\nroute('GET', '/x/{name}', receive)",
            "c.lua": "route('GET', '/api/v1/mine', function() end)",
            "d.lua": "local function d() end\nroute('GET', '/d', d)\nroute('get', '/d', function() end)",
            "e.lua": "route('FETCH', '/e', function() end)",
            "f.lua": "route('GET', 'relative', function() end)",
            "g.lua": "route('GET', '/g/', function() end)",
            "h.lua": "route('GET', '/h/{a}/{a}', function() end)",
            "i.lua": "route('GET', '/i', function() end, {public = 'yes'})",
            "j.lua": "route('GET', '/j', function() end, {when = {a = 1}})",
            "k.lua": "route('GET', '/api/v1', function() end)",
            "l.lua": "route('GET', '/l', 'not a function')",
        ])
        defer { folder.remove() }
        let files = try folder.load().catalog.files
        let errors = Dictionary(uniqueKeysWithValues: files.map { ($0.file, $0.error ?? "loaded") })
        #expect(errors["hooks/a.lua"] == "loaded")
        #expect(errors["hooks/b.lua"] == "hooks/b.lua:3: route: GET /x/{name} is already defined by hooks/a.lua:1")
        #expect(errors["hooks/c.lua"] == "hooks/c.lua:1: route: path '/api/v1/mine' is under /api/v1/, which belongs to the REST API")
        #expect(errors["hooks/d.lua"] == "hooks/d.lua:3: route: GET /d is already defined at line 2")
        #expect(errors["hooks/e.lua"]?.contains("method must be one of GET, POST, PUT, PATCH, DELETE (got 'FETCH')") == true)
        #expect(errors["hooks/f.lua"]?.contains("path must start with /") == true)
        #expect(errors["hooks/g.lua"]?.contains("no trailing /") == true)
        #expect(errors["hooks/h.lua"]?.contains("parameter '{a}' appears twice") == true)
        #expect(errors["hooks/i.lua"]?.contains("option 'public' must be a boolean") == true)
        #expect(errors["hooks/j.lua"]?.contains("unknown option 'when' (allowed: name, public)") == true)
        #expect(errors["hooks/k.lua"]?.contains("is under /api/v1/") == true)
        #expect(errors["hooks/l.lua"] == "hooks/l.lua:1: route: handler must be a function (got string)")
    }
}

/// `HookCatalog.route(method:path:)`: which route answers a request.
@Suite struct HookRouteMatchTests {
    @Test func literalsWinParametersMatchOneSegmentOtherMethodsAreNamed() throws {
        let folder = try HooksFolder(["r.lua": """
            route('GET', '/', function() end)
            route('GET', '/items/{id}', function() end)
            route('GET', '/items/new', function() end)
            route('POST', '/items/{id}', function() end)
            route('DELETE', '/items/{id}/notes/{note}', function() end)
            """])
        defer { folder.remove() }
        let catalog = try folder.load().catalog
        let path = { (index: Int) in catalog.handlers[index].route?.path }
        guard case .route(let root, let none) = catalog.route(method: "GET", path: "/") else { Issue.record("no root"); return }
        #expect(path(root) == "/" && none.isEmpty)
        guard case .route(let item, let params) = catalog.route(method: "GET", path: "/items/a%20b") else { Issue.record("no item"); return }
        #expect(path(item) == "/items/{id}" && params == ["id": "a%20b"])
        guard case .route(let new, _) = catalog.route(method: "GET", path: "/items/new") else { Issue.record("no literal"); return }
        #expect(path(new) == "/items/new")
        guard case .route(let note, let both) = catalog.route(method: "DELETE", path: "/items/1/notes/2") else { Issue.record("no note"); return }
        #expect(path(note) == "/items/{id}/notes/{note}" && both == ["id": "1", "note": "2"])
        #expect(catalog.route(method: "PUT", path: "/items/1") == .otherMethod(allowed: ["GET", "POST"]))
        #expect(catalog.route(method: "GET", path: "/items") == .none)
        #expect(catalog.route(method: "GET", path: "/items/1/more") == .none)
        #expect(catalog.route(method: "GET", path: "/items//notes/2") == .none)
        #expect(catalog.route(method: "GET", path: "/Items/1") == .none)
    }
}
