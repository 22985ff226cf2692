import AsyncHTTPClient
import Foundation
import MoonbaseJSON
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Limits and identity for the HTTP requests that hook scripts make.
public struct OutboundHTTPConfiguration: Sendable {
    /// Used when a request names no `timeout_ms`.
    public var defaultTimeout: Duration
    /// A response body longer than this fails the request instead of being buffered.
    public var maxResponseBytes: Int
    /// Redirects followed per request; 0 returns 3xx responses as they are.
    public var maxRedirects: Int
    /// Sent as `User-Agent` unless the script sets its own.
    public var userAgent: String
    /// Open connections per host (HTTP/1): how many requests to one service may be in flight
    /// at once; more wait for a free connection.
    public var connectionsPerHost: Int

    /// Defaults: 10 s timeout, 4 MiB responses, 5 redirects, 128 connections per host.
    public init(
        userAgent: String,
        defaultTimeout: Duration = .seconds(10),
        maxResponseBytes: Int = 4 << 20,
        maxRedirects: Int = 5,
        connectionsPerHost: Int = 128
    ) {
        self.userAgent = userAgent
        self.defaultTimeout = defaultTimeout
        self.maxResponseBytes = maxResponseBytes
        self.maxRedirects = maxRedirects
        self.connectionsPerHost = connectionsPerHost
    }
}

/// The outcome of `OutboundHTTP.request`.
public enum OutboundHTTPResult: Sendable, Equatable {
    /// Any HTTP response, whatever its status: `{status, headers, body, json?}`.
    case response(JSONValue)
    /// A network problem the script is expected to handle (`nil, message` in Lua). A timeout's
    /// message starts with "timeout".
    case failure(String)
    /// A malformed request spec: a programming error in the script (a Lua error).
    case invalid(String)
}

/// Outbound HTTP for hook scripts, over one shared `HTTPClient`, made on the first request.
///
/// Call `shutdown()` before releasing it once it has made a request: AsyncHTTPClient asserts
/// that a client is shut down. (Made lazily, so servers and tools whose hooks never reach out
/// own no client.)
public final class OutboundHTTP: Sendable {
    public let configuration: OutboundHTTPConfiguration
    private let clientConfiguration: HTTPClient.Configuration
    /// The client once made; `closed` once shut down (requests then fail).
    private let state = Mutex<(client: HTTPClient?, closed: Bool)>((nil, false))

    public init(configuration: OutboundHTTPConfiguration) {
        self.configuration = configuration
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: configuration.maxRedirects > 0
                ? .follow(max: configuration.maxRedirects, allowCycles: false) : .disallow
        )
        // By default the pool retries a refused connection until the deadline; a script wants
        // "connection refused" at once.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        // AsyncHTTPClient's default of 8 would queue a burst of hook requests to one service.
        clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.connectionsPerHost
        self.clientConfiguration = clientConfiguration
    }

    /// The shared client on NIO's shared event loop group; nil once shut down.
    private var client: HTTPClient? {
        state.withLock { state in
            if state.closed { return nil }
            if let client = state.client { return client }
            let client = HTTPClient(eventLoopGroup: .singletonMultiThreadedEventLoopGroup, configuration: clientConfiguration)
            state.client = client
            return client
        }
    }

    /// Shuts the client down; in-flight requests fail, later ones are refused.
    public func shutdown() async throws {
        let client = state.withLock { state in
            state.closed = true
            return state.client
        }
        try await client?.shutdown()
    }

    /// Performs the request a script described.
    ///
    /// `spec` is an object: `method` (default "GET", case-insensitive), `url` (required,
    /// http or https), `headers` (name → string), `body` (string) or `json` (any value, sent
    /// as JSON with `Content-Type: application/json` unless the script set a Content-Type),
    /// `timeout_ms` (integer, 1 to 86 400 000). Unknown fields are rejected, to catch typos.
    ///
    /// The whole exchange, body included, must finish within the smaller of `timeout_ms`
    /// (or `defaultTimeout`) and the time left until `deadline`.
    ///
    /// The response's `body` is the body decoded as UTF-8; invalid sequences become U+FFFD, so
    /// binary bodies do not survive intact. `json` is present when the Content-Type is
    /// `application/json` or `*/*+json` and the body parses. Repeated headers are joined with ", ".
    public func request(_ spec: JSONValue, deadline: ContinuousClock.Instant? = nil) async -> OutboundHTTPResult {
        let parsed: RequestSpec
        do {
            parsed = try RequestSpec(spec, userAgent: configuration.userAgent)
        } catch {
            return .invalid(error.message)
        }
        let requested = parsed.timeoutMs ?? milliseconds(configuration.defaultTimeout)
        let timeoutMs = deadline.map { min(requested, max(0, milliseconds($0 - .now))) } ?? requested
        let timeoutMessage = "timeout after \(timeoutMs) ms"
        guard timeoutMs > 0 else { return .failure(timeoutMessage) }

        // AsyncHTTPClient's deadline stops at the response head, so a timer child bounds the
        // body too; whichever child finishes first wins and the other is cancelled.
        return await withTaskGroup(of: OutboundHTTPResult.self) { group in
            let request = parsed.request
            group.addTask {
                await self.perform(request, timeoutMs: timeoutMs, timeoutMessage: timeoutMessage)
            }
            group.addTask {
                do {
                    try await Task.sleep(for: .milliseconds(timeoutMs))
                    return .failure(timeoutMessage)
                } catch {
                    return .failure("cancelled")
                }
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }

    private func perform(_ request: HTTPClientRequest, timeoutMs: Int64, timeoutMessage: String) async -> OutboundHTTPResult {
        guard let client else { return .failure("the server is shutting down") }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(timeoutMs))
            // Throws as soon as the count (or Content-Length) exceeds the cap; dropping the body
            // then closes the connection.
            let body = try await response.body.collect(upTo: configuration.maxResponseBytes)
            return .response(Self.responseValue(response, body: Array(body.readableBytesView)))
        } catch {
            return .failure(describe(error, timeoutMessage: timeoutMessage))
        }
    }

    private static func responseValue(_ response: HTTPClientResponse, body: [UInt8]) -> JSONValue {
        var headers = JSONObject()
        for (name, value) in response.headers {
            let key = name.lowercased()
            if case .string(let earlier)? = headers[key] {
                headers[key] = .string(earlier + ", " + value)
            } else {
                headers[key] = .string(value)
            }
        }
        var result: JSONObject = [
            "status": .int(Int64(response.status.code)),
            "headers": .object(headers),
            "body": .string(String(decoding: body, as: UTF8.self)),
        ]
        if isJSONMediaType(response.headers.first(name: "content-type")), let json = try? JSONValue.parse(body) {
            result["json"] = json
        }
        return .object(result)
    }

    private static func isJSONMediaType(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || mediaType.hasSuffix("+json")
    }

    private func describe(_ error: any Error, timeoutMessage: String) -> String {
        switch error {
        case is NIOTooManyBytesError:
            // Not the error's own maxBytes: when streaming it reports the budget left, not the cap.
            return "response too large (more than \(configuration.maxResponseBytes) bytes)"
        case is CancellationError:
            return "cancelled"
        case let error as HTTPClientError:
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return timeoutMessage
            case .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return "timeout while connecting"
            case .cancelled:
                return "cancelled"
            case .redirectLimitReached:
                return "too many redirects (more than \(configuration.maxRedirects))"
            case .redirectCycleDetected:
                return "redirect cycle"
            case .remoteConnectionClosed:
                return "connection closed by the server"
            default:
                return "request failed: \(error)"
            }
        case let error as NIOConnectionError:
            if let dnsError = error.dnsAError ?? error.dnsAAAAError {
                return "cannot resolve host \(error.host): \(dnsError)"
            }
            let refused = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
            if refused { return "connection refused (\(error.host):\(error.port))" }
            return "cannot connect to \(error.host):\(error.port): \(error)"
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            return "connection refused"
        case ChannelError.connectTimeout:
            return "timeout while connecting"
        default:
            // NIOSSL's error types, named rather than imported to keep the dependency list short.
            if String(reflecting: type(of: error)).contains("SSL") { return "TLS error: \(error)" }
            return "request failed: \(error)"
        }
    }
}

/// A script's request spec, checked and turned into an `HTTPClientRequest`.
private struct RequestSpec {
    struct Invalid: Error {
        let message: String
    }

    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static let fields: Set<String> = ["method", "url", "headers", "body", "json", "timeout_ms"]
    /// One day: generous, and far from overflowing nanosecond arithmetic.
    static let maxTimeoutMs: Int64 = 86_400_000

    var request: HTTPClientRequest
    var timeoutMs: Int64?

    init(_ spec: JSONValue, userAgent: String) throws(Invalid) {
        guard case .object(let object) = spec else { throw Invalid(message: "request must be a table") }
        if let unknown = object.keys.first(where: { !Self.fields.contains($0) }) {
            throw Invalid(message: "unknown request field '\(unknown)'")
        }

        guard let urlValue = object["url"] else { throw Invalid(message: "url is required") }
        guard case .string(let url) = urlValue else { throw Invalid(message: "url must be a string") }
        guard let parsedURL = URL(string: url), let scheme = parsedURL.scheme?.lowercased() else {
            throw Invalid(message: "invalid url '\(url)'")
        }
        guard scheme == "http" || scheme == "https" else {
            throw Invalid(message: "unsupported url scheme '\(scheme)' (http or https only)")
        }
        guard let host = parsedURL.host, !host.isEmpty else { throw Invalid(message: "url has no host: '\(url)'") }
        request = HTTPClientRequest(url: url)

        switch object["method"] {
        case nil:
            request.method = .GET
        case .string(let name)?:
            let method = name.uppercased()
            guard Self.methods.contains(method) else { throw Invalid(message: "unsupported method '\(name)'") }
            request.method = HTTPMethod(rawValue: method)
        default:
            throw Invalid(message: "method must be a string")
        }

        switch object["headers"] {
        case nil:
            break
        case .object(let headers)?:
            for (name, value) in headers {
                guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                    throw Invalid(message: "invalid header name '\(name)'")
                }
                guard case .string(let text) = value else { throw Invalid(message: "header '\(name)' must be a string") }
                // CR/LF would let a value smuggle extra headers.
                guard !text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                    throw Invalid(message: "header '\(name)' contains a line break")
                }
                request.headers.add(name: name, value: text)
            }
        default:
            throw Invalid(message: "headers must be a table of strings")
        }
        if !request.headers.contains(name: "user-agent") {
            request.headers.add(name: "User-Agent", value: userAgent)
        }

        switch (object["body"], object["json"]) {
        case (nil, nil):
            break
        case (.string(let body)?, nil):
            request.body = .bytes(ByteBuffer(string: body))
        case (_?, nil):
            throw Invalid(message: "body must be a string")
        case (nil, let json?):
            if !request.headers.contains(name: "content-type") {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            request.body = .bytes(ByteBuffer(bytes: json.serialized()))
        case (_?, _?):
            throw Invalid(message: "body and json cannot both be given")
        }

        switch object["timeout_ms"] {
        case nil:
            timeoutMs = nil
        case .int(let ms)? where ms > 0 && ms <= Self.maxTimeoutMs:
            timeoutMs = ms
        case .double(let ms)? where ms >= 1 && ms <= Double(Self.maxTimeoutMs) && ms == ms.rounded():
            timeoutMs = Int64(ms)  // Lua floats such as 2e3
        default:
            throw Invalid(message: "timeout_ms must be an integer from 1 to \(Self.maxTimeoutMs)")
        }
    }

    /// RFC 9110 token characters, the only ones allowed in a header name.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// Whole milliseconds in `duration`, rounded down.
private func milliseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
}
