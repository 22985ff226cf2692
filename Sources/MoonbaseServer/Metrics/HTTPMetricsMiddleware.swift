import Hummingbird

/// Counts every request by route pattern, method and status, with its latency. Outermost, so it
/// sees the status the error middleware answered with; a path that is no route counts as
/// `NotFound`, so clients probing paths cannot add series.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.answered(route: context.endpointPath ?? "NotFound", method: request.method.rawValue, status: response.status.code,
                             after: ContinuousClock.now - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.answered(route: context.endpointPath ?? "NotFound", method: request.method.rawValue, status: status,
                             after: ContinuousClock.now - started)
            throw error
        }
    }
}
