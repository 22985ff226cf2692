import HostModules
import LuaRuntime
import MoonbaseServer

/// The host modules of commands that run hooks without a server: `json`, `log`, `http`,
/// `crypto` and `webhook` as the server has them, and a `records` that refuses (there is no database), so
/// files load and run as they do in `moonbase serve`. `body` gets them; the client is shut
/// down after it, however it ends.
func withToolModules<T>(_ body: ([LuaModule]) async throws -> T) async throws -> T {
    let outbound = OutboundHTTP(configuration: ServerConfiguration().outboundHTTP)
    let modules = standardModules + [RecordsModule.unavailable("this command runs without a database")] + reachingOutModules(using: outbound)
    do {
        let result = try await body(modules)
        try? await outbound.shutdown()
        return result
    } catch {
        try? await outbound.shutdown()
        throw error
    }
}
