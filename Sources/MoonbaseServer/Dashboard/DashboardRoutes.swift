import Hummingbird

extension MoonbaseServer {
    /// The dashboard: `GET /_/` and its script and style, with no token (its API calls carry
    /// the one the visitor gives); `GET /_` redirects to `/_/`, so that the page's relative
    /// links resolve under it.
    func registerDashboard(on router: Router<BasicRequestContext>) {
        router.get("_") { request, _ -> Response in
            guard request.uri.path.hasSuffix("/") else { return Response(status: .movedPermanently, headers: [.location: "/_/"]) }
            return Self.asset(DashboardPage.html, type: "text/html; charset=utf-8")
        }
        router.get("_/dashboard.js") { _, _ in Self.asset(DashboardScript.javascript, type: "text/javascript; charset=utf-8") }
        router.get("_/dashboard.css") { _, _ in Self.asset(DashboardStyle.css, type: "text/css; charset=utf-8") }
    }

    private static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [
            .contentType: type,
            // Only this server's own script, style and API: nothing from elsewhere runs or loads.
            .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'",
            .cacheControl: "no-cache",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
