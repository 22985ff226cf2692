import LuaRuntime
import MoonbaseJSON

/// `http`: `request{method, url, headers, body, json, timeout_ms}` → `{status, headers, body,
/// json}`, and `get(url [, options])`, `post(url, options)` on top of it. The handler's
/// coroutine waits while the request runs on the event loop, so no thread waits; a network
/// error or a timeout returns `nil, message`, a malformed request raises.
public enum HTTPModule {
    public static func make(_ client: OutboundHTTP) -> LuaModule {
        LuaModule(name: "http", summary: "Outbound HTTP requests; the handler waits without holding a thread.", functions: [
            LuaFunction("request", "Sends a request. A network error or a timeout returns nil and a message.",
                        parameters: ["request HTTPRequest"], returns: ["HTTPResponse? response", "string? error"]) { arguments in
                guard arguments.isTable(1), case .object(let spec)? = try? arguments.json(1) else {
                    return arguments.badArgument(1, to: "http.request", expected: "request table")
                }
                return perform(client, spec, "http.request")
            },
            LuaFunction("get", "Sends a GET request.", parameters: ["url string", "options? HTTPOptions"],
                        returns: ["HTTPResponse? response", "string? error"]) { arguments in shorthand(client, "GET", &arguments) },
            LuaFunction("post", "Sends a POST request.", parameters: ["url string", "options? HTTPOptions"],
                        returns: ["HTTPResponse? response", "string? error"]) { arguments in shorthand(client, "POST", &arguments) },
        ], classes: classes)
    }

    /// The tables `http` takes and returns.
    static let classes = [
        LuaClass("HTTPOptions", "What a request may carry besides its method and URL.", fields: [
            "headers? table<string, string>", "body? string The body as it is.",
            "json? any A value sent as JSON (sets content-type).", "timeout_ms? integer Give up after this long.",
        ]),
        LuaClass("HTTPRequest: HTTPOptions", "A request for `http.request`.", fields: [
            #"method? string "GET" unless given."#, "url string",
        ]),
        LuaClass("HTTPResponse", "What a server answered.", fields: [
            "status integer", "headers table<string, string> Names in lower case.", "body string",
            "json? any The body parsed, when it is JSON.",
        ]),
    ]

    /// `http.get(url [, options])` and `http.post(url, options)`.
    private static func shorthand(_ client: OutboundHTTP, _ method: String, _ arguments: inout LuaArguments) -> LuaHostResult {
        let name = method.lowercased()
        guard let url = arguments.string(1) else { return arguments.badArgument(1, to: "http." + name, expected: "url string") }
        var spec = JSONObject()
        if !arguments.isNil(2) {
            guard arguments.isTable(2), case .object(let options)? = try? arguments.json(2) else {
                return arguments.badArgument(2, to: "http." + name, expected: "options table")
            }
            spec = options
        }
        spec["method"] = .string(method)
        spec["url"] = .string(url)
        return perform(client, spec, "http." + name)
    }

    static func perform(_ client: OutboundHTTP, _ spec: JSONObject, _ function: String) -> LuaHostResult {
        .suspend(LuaSuspension { deadline in
            switch await client.request(.object(spec), deadline: deadline) {
            case .response(let response): .values([response])
            case .failure(let message): .failure(message)
            case .invalid(let message): .error("\(function): \(message)")
            }
        })
    }
}
