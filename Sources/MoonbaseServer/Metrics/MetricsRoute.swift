import Hummingbird

extension MoonbaseServer {
    /// `GET /metrics`: the Prometheus text exposition, behind the admin token unless
    /// `--metrics-public`.
    func registerMetrics(on router: Router<BasicRequestContext>) {
        let (metrics, hooks, deliveries) = (metrics, hooks, deliveries)
        let route = configuration.metricsPublic ? router.group("metrics") : router.group("metrics").add(middleware: AuthMiddleware(token: adminToken))
        route.get { _, _ -> Response in
            let bytes = metrics.scrape(hooks: deliveries.metrics, generations: hooks.live, backlog: deliveries.backlogFigures)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
