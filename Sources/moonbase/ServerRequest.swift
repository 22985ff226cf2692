import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MoonbaseJSON

/// The CLI's HTTP needs: a JSON request to a running server with the admin token.
enum ServerRequest {
    /// Sends `method path` to the server at `base` with `token`; returns the parsed body, or throws
    /// the server's `{"error": …}` message for a status outside 2xx.
    static func send(_ method: String, _ path: String, base: String, token: String?) async throws -> JSONValue {
        try await exchange(method, path, base: base, token: token).body
    }

    /// `send`, also returning the response, for its headers.
    static func exchange(_ method: String, _ path: String, base: String, token: String?) async throws -> (body: JSONValue, response: HTTPURLResponse?) {
        guard let url = URL(string: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path) else {
            throw ValidationFailure("not a URL: \(base)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let data: Data, response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch let error as URLError where error.code == .cannotConnectToHost || error.code == .cannotFindHost {
            throw ValidationFailure("no server at \(base) (is `moonbase serve` running there?)")
        } catch let error as URLError {
            throw ValidationFailure("cannot reach \(base): \(error.localizedDescription)")
        }
        let http = response as? HTTPURLResponse
        let status = http?.statusCode ?? 0
        let body = data.isEmpty ? JSONValue.null : try JSONValue.parse(Array(data))
        guard (200..<300).contains(status) else {
            throw ValidationFailure("the server answered \(status): \(body.field("error")?.text ?? "")")
        }
        return (body, http)
    }
}

/// A failure to report to the user as it is.
struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
