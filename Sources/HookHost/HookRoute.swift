import MoonbaseJSON

/// What `route(method, path, handler [, options])` registered (SPEC section 14): an endpoint
/// written in Lua. The hook host only keeps and runs it; the server serves it.
public struct HookRoute: Sendable, Equatable {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    public var method: String
    /// The path as registered, such as `/webhooks/{provider}`.
    public var path: String
    /// `options.public`: served without the admin token.
    public var isPublic: Bool
    /// The path's segments, in order.
    public var segments: [Segment]

    public enum Segment: Sendable, Equatable {
        /// Text the request's segment must equal.
        case literal(String)
        /// `{name}`: any non-empty segment, given to the handler as `req.params.name`.
        case parameter(String)
    }

    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    /// The REST API's own prefix, which routes may not use.
    static let reservedPrefix = "/api/v1"

    /// Method and path with the parameters' names left out: two routes with the same one would
    /// answer the same requests.
    var identity: String {
        method + " " + segments.map { segment in
            switch segment {
            case .literal(let text): "/" + text
            case .parameter: "/{}"
            }
        }.joined()
    }

    /// Checks a registration's method and path.
    static func parse(method: String, path: String, isPublic: Bool) -> Result<HookRoute, RegistrationError> {
        let method = method.uppercased()
        guard methods.contains(method) else {
            return .failure(RegistrationError(message: "method must be one of \(methods.joined(separator: ", ")) (got '\(method)')"))
        }
        guard path.hasPrefix("/") else { return .failure(RegistrationError(message: "path must start with / (got '\(path)')")) }
        if path == reservedPrefix || path.hasPrefix(reservedPrefix + "/") {
            return .failure(RegistrationError(message: "path '\(path)' is under \(reservedPrefix)/, which belongs to the REST API"))
        }
        var segments: [Segment] = []
        var names: Set<String> = []
        for piece in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) where !(path == "/" && piece.isEmpty) {
            if piece.hasPrefix("{") && piece.hasSuffix("}") && piece.count > 2 {
                let name = String(piece.dropFirst().dropLast())
                guard isName(name) else {
                    return .failure(RegistrationError(message: "path '\(path)': parameter '{\(name)}' must be a name (letters, digits, _)"))
                }
                guard names.insert(name).inserted else {
                    return .failure(RegistrationError(message: "path '\(path)': parameter '{\(name)}' appears twice"))
                }
                segments.append(.parameter(name))
            } else if !piece.isEmpty && piece.allSatisfy(isLiteralCharacter) {
                segments.append(.literal(String(piece)))
            } else {
                return .failure(RegistrationError(message:
                    "path '\(path)': segment '\(piece)' must be {name} or letters, digits and - . _ ~ (no empty segment, no trailing /)"))
            }
        }
        return .success(HookRoute(method: method, path: path, isPublic: isPublic, segments: segments))
    }

    private static func isName(_ text: String) -> Bool {
        guard let first = text.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    private static func isLiteralCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "-._~".contains(character))
    }
}

/// What a route answers, as SPEC section 14 reads the handler's return value.
public struct RouteReply: Sendable, Equatable {
    public var status: Int
    /// Header names as the handler gave them, with the content type filled in.
    public var headers: [RouteHeader]
    public var body: [UInt8]

    static let responseKeys: Set<String> = ["status", "json", "body", "headers"]

    /// Reads a handler's return value: nil (or `json.null`) is 204; a table of only `status`,
    /// `json`, `body` and `headers` (with `status` an integer if present) describes the answer;
    /// any other table is answered as JSON with 200. A `body` is `text/plain; charset=utf-8`
    /// and `json` `application/json` unless `headers` name a content type.
    static func make(from value: JSONValue) -> Result<RouteReply, RouteReplyError> {
        switch value {
        case .null:
            return .success(RouteReply(status: 204, headers: [], body: []))
        case .object(let table) where isResponse(table):
            return described(table)
        case .object, .array:
            return .success(RouteReply(status: 200, headers: [RouteHeader(name: "content-type", value: "application/json")],
                                       body: value.serialized()))
        default:
            return .failure(RouteReplyError(message:
                "a route must return a table (its JSON, or {status, json | body, headers}) or nil (got a \(kind(of: value)))"))
        }
    }

    private static func isResponse(_ table: JSONObject) -> Bool {
        guard !table.isEmpty, table.allSatisfy({ responseKeys.contains($0.key) }) else { return false }
        if let status = table["status"], case .int = status { return true }
        return table["status"] == nil
    }

    private static func described(_ table: JSONObject) -> Result<RouteReply, RouteReplyError> {
        var reply = RouteReply(status: 200, headers: [], body: [])
        if case .int(let status)? = table["status"] {
            guard (200...599).contains(status) else {
                return .failure(RouteReplyError(message: "a route's status must be from 200 to 599 (got \(status))"))
            }
            reply.status = Int(status)
        }
        if let headers = table["headers"] {
            guard case .object(let fields) = headers else {
                return .failure(RouteReplyError(message: "a route's headers must be a table of name = value"))
            }
            for (name, value) in fields {
                let text: String
                switch value {
                case .string(let string): text = string
                case .int(let number): text = String(number)
                default: return .failure(RouteReplyError(message: "header '\(name)' must be a string or an integer"))
                }
                guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte), !text.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                    return .failure(RouteReplyError(message: "header '\(name)' is not a valid HTTP header"))
                }
                reply.headers.append(RouteHeader(name: name, value: text))
            }
        }
        var contentType: String?
        switch (table["json"], table["body"]) {
        case (.some, .some):
            return .failure(RouteReplyError(message: "a route answers with json or with body, not both"))
        case (.some(let json), nil):
            reply.body = json.serialized()
            contentType = "application/json"
        case (nil, .some(.string(let text))):
            reply.body = Array(text.utf8)
            contentType = "text/plain; charset=utf-8"
        case (nil, .some(let other)):
            return .failure(RouteReplyError(message: "a route's body must be a string (got a \(kind(of: other))); use json for tables"))
        case (nil, nil):
            break
        }
        if let contentType, !reply.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            reply.headers.append(RouteHeader(name: "content-type", value: contentType))
        }
        return .success(reply)
    }

    /// RFC 9110 token characters.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    private static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "nil"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array, .object: "table"
        }
    }
}

/// Why a route's return value cannot be answered.
struct RouteReplyError: Error {
    var message: String
}

/// One header of a route's answer.
public struct RouteHeader: Sendable, Equatable {
    public var name: String
    public var value: String
}

/// How a route's call went.
public enum RouteOutcome: Sendable, Equatable {
    /// What the handler answered.
    case reply(RouteReply)
    /// `reject(message, status)`: answered `{"error": message}` with `status`.
    case rejected(message: String, status: Int)
    /// An error, a budget exceeded or an answer that cannot be sent: 500 "hook failed"; the
    /// details (here) are in the log, never for the client.
    case failed(String)
}
