import HostModules

/// Runs `body` with a new client and always shuts it down (AsyncHTTPClient asserts on a leak).
func withClient(
    _ configuration: OutboundHTTPConfiguration = OutboundHTTPConfiguration(userAgent: "moonbase-test/1"),
    _ body: (OutboundHTTP) async throws -> Void
) async throws {
    let http = OutboundHTTP(configuration: configuration)
    do {
        try await body(http)
    } catch {
        try await http.shutdown()
        throw error
    }
    try await http.shutdown()
}

