import Foundation
import Hummingbird

/// The admin token: given, or generated on first start and kept in the data folder (mode 0600).
public enum AdminToken {
    static let fileName = "admin_token"

    /// The token to use, and whether it was generated just now (so the caller prints it once).
    public static func resolve(given: String?, dataDirectory: String) throws -> (token: String, generated: Bool) {
        if let given, !given.isEmpty { return (given, false) }
        let path = dataDirectory + "/" + fileName
        if let token = stored(in: dataDirectory) { return (token, false) }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw APIError(.internalServerError, "cannot write \(path)")
        }
        return (token, true)
    }

    /// The token a client command sends: `given`, else `MOONBASE_ADMIN_TOKEN`, else the one a
    /// server generated into `dataDirectory`; nil when there is none.
    public static func forClient(given: String?, dataDirectory: String) -> String? {
        if let given, !given.isEmpty { return given }
        if let token = ProcessInfo.processInfo.environment["MOONBASE_ADMIN_TOKEN"], !token.isEmpty { return token }
        return stored(in: dataDirectory)
    }

    /// The token kept in `dataDirectory`, if any.
    static func stored(in dataDirectory: String) -> String? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/" + fileName, encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    /// Compares in time that depends only on the lengths, not on where the first difference is.
    static func matches(_ given: some Collection<UInt8>, _ expected: [UInt8]) -> Bool {
        guard !expected.isEmpty else { return false }
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        var index = 0
        for byte in given {
            difference |= byte ^ expected[index % expected.count]
            index += 1
        }
        return difference == 0
    }
}

/// Requires `Authorization: Bearer <admin token>` on everything but the health check.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) {
        self.token = Array(token.utf8)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path != "/api/v1/health" { try await authorize(request) }
        return try await next(request, context)
    }

    /// Throws 401 unless the request carries the admin token (its body is drained first).
    func authorize(_ request: Request) async throws {
        guard let header = request.headers[.authorization] else {
            await RequestBodies.drain(request)
            throw APIError(.unauthorized, "missing admin token (Authorization: Bearer <token>)")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), AdminToken.matches(header.utf8.dropFirst(prefix.utf8.count), token) else {
            await RequestBodies.drain(request)
            throw APIError(.unauthorized, "wrong admin token")
        }
    }
}
