import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The CLI's one HTTP need: GET a JSON document from a running server with the admin token.
enum HTTPGet {
    static func fetch(_ url: URL, token: String?) async throws -> (body: [UInt8], status: Int) {
        var request = URLRequest(url: url)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return (Array(data), (response as? HTTPURLResponse)?.statusCode ?? 0)
    }
}
