import Hummingbird

extension MoonbaseServer {
    /// `GET /metrics`: the Prometheus text exposition, behind the admin token unless
    /// `--metrics-public`.
    func registerMetrics(on router: Router<BasicRequestContext>) {
        let (metrics, catalog, deliveries) = (metrics, hooks.catalog, deliveries)
        let route = configuration.metricsPublic ? router.group("metrics") : router.group("metrics").add(middleware: AuthMiddleware(token: adminToken))
        route.get { _, _ -> Response in
            let bytes = metrics.scrape(hooks: deliveries.metrics, stats: catalog.statsSnapshot(), backlog: deliveries.backlogFigures)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
