import Foundation
import HookHost
import Hummingbird
import MoonbaseJSON

/// The routes hook files register with `route(method, path, handler [, options])` (SPEC
/// section 14), served beside the REST API. Each request runs its handler on the hook pool with
/// the handlers' budgets; the body is read with the REST API's limit and JSON parser.
struct LuaRoutes {
    let hooks: HookPool
    /// Checks the admin token of the routes that are not `public`.
    let auth: AuthMiddleware<BasicRequestContext>
    let maxBodyBytes: Int

    /// Registers every loaded route on `router`; a route's path asked with a method no route has
    /// answers 405.
    func register(on router: Router<BasicRequestContext>) {
        let catalog = hooks.catalog
        let endpoints = Endpoints(group: router.group())
        for index in catalog.handlers.indices {
            guard let route = catalog.handlers[index].route, let method = HTTPRequest.Method(route.method) else { continue }
            endpoints.on(method, Self.routerPath(route)) { request, context in
                if !route.isPublic { try await auth.authorize(request) }
                return try await answer(index, route, request, context)
            }
        }
        endpoints.refuseOtherMethods()
    }

    /// The route's path for the router. Parameters are named by position, so that two routes
    /// whose paths differ only in their parameters' names share the router's node (and the
    /// 405 answers of their path).
    private static func routerPath(_ route: HookRoute) -> String {
        "/" + route.segments.enumerated().map { position, segment in
            switch segment {
            case .literal(let text): text
            case .parameter: ":" + parameter(position)
            }
        }.joined(separator: "/")
    }

    private static func parameter(_ position: Int) -> String { "p\(position)" }

    /// Builds `req`, runs the handler and answers what it returned.
    private func answer(_ index: Int, _ route: HookRoute, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await RequestBodies.collect(request, upTo: maxBodyBytes)
        var params = JSONObject()
        for (position, segment) in route.segments.enumerated() {
            if case .parameter(let name) = segment, let value = context.parameters.get(Self.parameter(position)) {
                params[name] = .string(Self.decoded(value))
            }
        }
        var query = JSONObject()
        for (key, value) in request.uri.queryParameters where query[Self.decoded(key)] == nil { // the first of repeated keys
            query[Self.decoded(key)] = .string(String(value))
        }
        var headers = JSONObject()
        for field in request.headers {
            let name = field.name.canonicalName // lower case
            if case .string(let earlier)? = headers[name] {
                headers[name] = .string(earlier + ", " + field.value)
            } else {
                headers[name] = .string(field.value)
            }
        }
        var table: JSONObject = [
            "method": .string(route.method), "path": .string(Self.decoded(request.uri.path)), "params": .object(params),
            "query": .object(query), "headers": .object(headers), "body": .string(String(buffer: body)),
        ]
        if body.readableBytes > 0 {
            do {
                table["json"] = try RequestBodies.json(body)
            } catch {
                // A body that says it is JSON must be; any other body may simply not be JSON.
                if request.headers[.contentType]?.lowercased().contains("json") == true { throw error }
            }
        }
        switch await hooks.runRoute(index, request: table) {
        case .reply(let reply):
            var fields = HTTPFields()
            for header in reply.headers {
                if let name = HTTPFields.Element.Name(header.name) { fields[name] = header.value }
            }
            return Response(status: .init(code: reply.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
        case .rejected(let message, let status):
            throw APIError(.init(code: status), message)
        case .failed:
            throw APIError(.internalServerError, "hook failed") // the details are in the log
        }
    }

    private static func decoded(_ text: some StringProtocol) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }
}
