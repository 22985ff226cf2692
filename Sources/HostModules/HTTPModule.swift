import LuaRuntime
import MoonbaseJSON

/// `http`: `request{method, url, headers, body, json, timeout_ms}` → `{status, headers, body,
/// json}`, and `get(url [, options])`, `post(url, options)` on top of it. The handler's
/// coroutine waits while the request runs on the event loop, so no thread waits; a network
/// error or a timeout returns `nil, message`, a malformed request raises.
public enum HTTPModule {
    public static func make(_ client: OutboundHTTP) -> LuaModule {
        LuaModule(name: "http", functions: [
            ("request", { arguments in
                guard arguments.isTable(1), case .object(let spec)? = try? arguments.json(1) else {
                    return arguments.badArgument(1, to: "http.request", expected: "request table")
                }
                return perform(client, spec, "http.request")
            }),
            ("get", { arguments in shorthand(client, "GET", &arguments) }),
            ("post", { arguments in shorthand(client, "POST", &arguments) }),
        ])
    }

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
