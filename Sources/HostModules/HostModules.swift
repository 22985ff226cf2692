import LuaRuntime

/// The modules every hook has whatever it runs in: `json` and `log`.
public let standardModules: [LuaModule] = [JSONModule.module, LogModule.module]

/// The modules that reach out of the sandbox: `http`, `crypto` and `webhook`, over one client.
public func reachingOutModules(using client: OutboundHTTP) -> [LuaModule] {
    [HTTPModule.make(client), CryptoModule.module, WebhookModule.make(client)]
}
