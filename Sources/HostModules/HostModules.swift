import LuaRuntime

/// The modules that reach out of the sandbox: `http`, `crypto` and `webhook`, over one client.
public func reachingOutModules(using client: OutboundHTTP) -> [LuaModule] {
    [HTTPModule.make(client), CryptoModule.module, WebhookModule.make(client)]
}
