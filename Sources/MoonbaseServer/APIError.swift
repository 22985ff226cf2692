import HookHost
import Hummingbird
import MoonbaseJSON
import RecordStore

/// An error answered as `{"error": message}` with its status (SPEC section 10).
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    /// What went wrong in detail, for the log and for hooks, never for clients.
    public var detail: String?

    public init(_ status: HTTPResponse.Status, _ message: String, detail: String? = nil) {
        self.status = status
        self.message = message
        self.detail = detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(status: status, .object(["error": .string(message)]))
    }

    static func from(_ error: StoreError) -> APIError {
        switch error {
        case .invalidCollectionName: APIError(.badRequest, error.description)
        case .collectionExists: APIError(.conflict, error.description)
        case .collectionNotFound, .recordNotFound: APIError(.notFound, error.description)
        case .versionConflict, .deliveryNotRetryable, .staleRedelivery: APIError(.conflict, error.description)
        case .deliveryNotFound: APIError(.notFound, error.description)
        case .database: APIError(.internalServerError, "internal error")
        // The database is away (PostgreSQL down): retrying later may succeed.
        case .unavailable: APIError(.serviceUnavailable, "storage unavailable")
        }
    }
}

/// Turns every error, the framework's included, into the `{"error": …}` shape, and logs the
/// unexpected ones (which the client only sees as "internal error").
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let refusal as WriteRefusal {
            return try APIError(.init(code: refusal.status), refusal.message).response(from: request, context: context)
        } catch let error as StoreError {
            switch error {
            case .database: context.logger.error("database error", metadata: ["error": .string(error.description)])
            case .unavailable: context.logger.warning("storage unavailable", metadata: ["error": .string(error.description)])
            default: break
            }
            return try APIError.from(error).response(from: request, context: context)
        } catch let error as HTTPError {
            return try APIError(error.status, error.body ?? error.status.reasonPhrase.lowercased()).response(from: request, context: context)
        } catch let error as HTTPResponseError {
            // The framework's own errors, such as a body over the limit (413).
            let message = error.status == .contentTooLarge ? "request body is too large" : error.status.reasonPhrase.lowercased()
            return try APIError(error.status, message).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": .string("\(error)")])
            return try APIError(.internalServerError, "internal error").response(from: request, context: context)
        }
    }
}

/// JSON responses written with the byte-level writer.
enum JSONResponse {
    static func make(status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        make(status: status, bytes: value.serialized())
    }

    static func make(status: HTTPResponse.Status, bytes: [UInt8]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func make(status: HTTPResponse.Status, writing write: (inout [UInt8]) -> Void) -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        write(&bytes)
        return make(status: status, bytes: bytes)
    }
}
