import Foundation
import HookHost
import Hummingbird
import MoonbaseJSON

/// The routes hook files register with `route(method, path, handler [, options])` (SPEC
/// section 14), served beside the REST API. The router is built once, so the routes are a
/// middleware that asks the current hook generation per request: a reload adds and removes
/// routes. Each request runs its handler on that generation's pool with the handlers' budgets
/// (and finishes there, whatever reload happens meanwhile); the body is read with the REST API's
/// limit and JSON parser. A path no route has goes on to the REST API (and its 404).
struct LuaRoutes: RouterMiddleware {
    typealias Context = BasicRequestContext

    let hooks: HookGenerations
    /// Checks the admin token of the routes that are not `public`.
    let auth: AuthMiddleware<BasicRequestContext>
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let generation = hooks.acquire()
        defer { generation.release() }
        switch generation.catalog.route(method: request.method.rawValue, path: request.uri.path) {
        case .none:
            return try await next(request, context)
        case .otherMethod(let allowed):
            throw APIError(.methodNotAllowed, "method not allowed here; use " + allowed.joined(separator: ", "))
        case .route(let index, let params):
            guard let route = generation.catalog.handlers[index].route else { return try await next(request, context) }
            context.coreContext.endpointPath.value = route.path // the metrics' label: a bounded set
            if !route.isPublic { try await auth.authorize(request) }
            return try await answer(index, route, params: params, request, on: generation.pool)
        }
    }

    /// Builds `req`, runs the handler and answers what it returned.
    private func answer(_ index: Int, _ route: HookRoute, params matched: [String: String], _ request: Request,
                        on pool: HookPool) async throws -> Response {
        let body = try await RequestBodies.collect(request, upTo: maxBodyBytes)
        var params = JSONObject()
        for segment in route.segments {
            if case .parameter(let name) = segment, let value = matched[name] { params[name] = .string(Self.decoded(value)) }
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
        switch await pool.runRoute(index, request: table) {
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
