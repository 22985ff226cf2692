/// Which route of a catalog answers a request: the server asks per request, so that the routes
/// of the current generation serve however often the hooks are reloaded.
public enum HookRouteMatch: Sendable, Equatable {
    /// Route `index` (a catalog index), with its parameters by name, still percent-encoded.
    case route(index: Int, params: [String: String])
    /// The path is a route's, the method is not: these methods are.
    case otherMethod(allowed: [String])
    /// No route has this path.
    case none
}

extension HookCatalog {
    /// The route for `method` and `path` (the request's path, without its query). A literal
    /// segment wins over a parameter where both match, as in the router the REST API uses.
    public func route(method: String, path: String) -> HookRouteMatch {
        if routeIndices.isEmpty { return .none }
        let pieces = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let segments = pieces.count == 1 && pieces.first == "" ? [] : Array(pieces) // "/" has none
        var best: (index: Int, literals: Int)?
        var allowed: [String] = []
        for index in routeIndices {
            guard let route = handlers[index].route, route.segments.count == segments.count else { continue }
            var literals = 0
            let matches = zip(route.segments, segments).allSatisfy { segment, piece in
                switch segment {
                case .literal(let text):
                    literals += 1
                    return piece == text
                case .parameter:
                    return !piece.isEmpty
                }
            }
            guard matches else { continue }
            if route.method == method {
                if best.map({ literals > $0.literals }) ?? true { best = (index, literals) }
            } else if !allowed.contains(route.method) {
                allowed.append(route.method)
            }
        }
        guard let best, let route = handlers[best.index].route else { return allowed.isEmpty ? .none : .otherMethod(allowed: allowed) }
        var params: [String: String] = [:]
        for (segment, piece) in zip(route.segments, segments) {
            if case .parameter(let name) = segment { params[name] = String(piece) }
        }
        return .route(index: best.index, params: params)
    }
}
