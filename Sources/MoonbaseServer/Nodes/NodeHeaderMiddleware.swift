import Hummingbird

/// Names the node that answered in every response's `Moonbase-Node` header, errors included: it
/// sits outside the error middleware, which has turned every error into a response by then.
struct NodeHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    let identity: NodeIdentity

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[NodeIdentity.header] = identity.name
        return response
    }
}
