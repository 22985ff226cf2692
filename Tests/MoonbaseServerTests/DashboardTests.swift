import Hummingbird
import HummingbirdTesting
import MoonbaseServer
import Testing

/// The dashboard's files (SPEC section 16); what the page does is tested in a real browser by
/// `Tests/Browser/dashboard_test.py`.
@Suite struct DashboardTests {
    @Test func theBareNameRedirectsToThePage() async throws {
        try await withServer { client, _ in
            let response = try await client.execute(uri: "/_", method: .get)
            #expect(response.status == .movedPermanently)
            #expect(response.headers[.location] == "/_/")
        }
    }

    /// The page, its script and its style need no token, and load nothing from elsewhere.
    @Test(arguments: [("/_/", "text/html"), ("/_/dashboard.js", "text/javascript"), ("/_/dashboard.css", "text/css")])
    func filesAreServedWithoutAToken(path: String, type: String) async throws {
        try await withServer { client, _ in
            let response = try await client.execute(uri: path, method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix(type) == true)
            #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            let text = String(buffer: response.body)
            #expect(!text.isEmpty)
            #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("@import"), "no CDN, no external font")
        }
    }

    @Test func thePageLinksItsOwnScriptAndStyle() async throws {
        try await withServer { client, _ in
            let page = String(buffer: try await client.execute(uri: "/_/", method: .get).body)
            #expect(page.contains(#"<script src="dashboard.js""#) && page.contains(#"href="dashboard.css""#))
        }
    }

    /// What the page reads still needs the token.
    @Test func theAPIItUsesStillNeedsTheToken() async throws {
        try await withServer { client, _ in
            for path in ["/api/v1/hooks", "/api/v1/hooks/deliveries", "/metrics"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .unauthorized, "\(path)")
            }
            let unknown = try await client.execute(uri: "/_/nothing-here", method: .get)
            #expect(unknown.status == .notFound)
        }
    }
}
