import Foundation
import HookHost
import LuaRuntime
import MoonbaseJSON

/// `webhook.send(url, payload, {secret = …})`: POSTs the payload as JSON with the Standard
/// Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC>`),
/// so receivers verify it with any Standard Webhooks library. The id defaults to the id of the
/// event being handled, the same on every retry, so a receiver can drop duplicates. Returns
/// what `http.request` returns.
public enum WebhookModule {
    public static func make(_ client: OutboundHTTP) -> LuaModule {
        LuaModule(name: "webhook", summary: "Signed webhooks (Standard Webhooks).", functions: [
            LuaFunction("send", "POSTs `payload` as JSON, signed with `options.secret`; returns what http.request returns.",
                        parameters: ["url string", "payload table|string", "options WebhookOptions"],
                        returns: ["HTTPResponse? response", "string? error"]) { arguments in send(client, &arguments) },
        ], classes: [
            LuaClass("WebhookOptions", "How a webhook is signed and sent.", fields: [
                "secret string The signing secret.", "id? string The webhook-id (default: the event's id).",
                "headers? table<string, string>", "timeout_ms? integer",
            ]),
        ])
    }

    private static func send(_ client: OutboundHTTP, _ arguments: inout LuaArguments) -> LuaHostResult {
        guard let url = arguments.string(1) else { return arguments.badArgument(1, to: "webhook.send", expected: "url string") }
        let body: [UInt8]
        if let text = arguments.string(2) {
            body = Array(text.utf8)
        } else if arguments.isTable(2), let payload = try? arguments.json(2) {
            body = payload.serialized()
        } else {
            return arguments.badArgument(2, to: "webhook.send", expected: "payload table or string")
        }
        guard arguments.isTable(3), case .object(let options)? = try? arguments.json(3) else {
            return arguments.badArgument(3, to: "webhook.send", expected: "options table with a secret")
        }
        guard case .string(let secret)? = options["secret"], !secret.isEmpty else {
            return .error("webhook.send: options.secret (a string) is required")
        }
        var id = (arguments.context as? HookCallContext)?.eventID ?? "msg_" + UUID().uuidString.lowercased()
        if let given = options["id"] {
            guard case .string(let text) = given, !text.isEmpty else { return .error("webhook.send: options.id must be a string") }
            id = text
        }
        let signed: [(String, String)]
        do {
            signed = try StandardWebhook.headers(id: id, timestamp: Int64(Date().timeIntervalSince1970), body: body, secret: secret)
        } catch {
            return .error("webhook.send: \(error)")
        }
        var headers = JSONObject()
        if case .object(let extra)? = options["headers"] { headers = extra }
        headers["content-type"] = "application/json"
        for (name, value) in signed { headers[name] = .string(value) }
        var spec: JSONObject = ["method": "POST", "url": .string(url), "headers": .object(headers),
                                "body": .string(String(decoding: body, as: UTF8.self))]
        if let timeout = options["timeout_ms"] { spec["timeout_ms"] = timeout }
        return HTTPModule.perform(client, spec, "webhook.send")
    }
}
