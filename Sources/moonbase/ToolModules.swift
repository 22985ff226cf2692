import HostModules
import LuaRuntime
import MoonbaseServer
import RecordStore

/// The host modules of commands that run hooks without a server: `json`, `log`, `http`,
/// `crypto` and `webhook` as the server has them, and `records` over `store` when there is one
/// (writes go straight to it, firing no hooks), else a `records` that refuses, so files load and
/// run as they do in `moonbase serve`. `body` gets them; the client is shut down after it,
/// however it ends.
func withToolModules<T>(store: (any RecordStore)? = nil, _ body: ([LuaModule]) async throws -> T) async throws -> T {
    let outbound = OutboundHTTP(configuration: ServerConfiguration().outboundHTTP)
    let records: LuaModule
    if let store {
        let module = RecordsModule(store: store, maxDepth: ServerConfiguration().hookWriteDepth)
        module.connect(StoreRecordWrites(store: store))
        records = module.module
    } else {
        records = RecordsModule.unavailable("this command runs without a database (hooks test --with-db gives it one)")
    }
    let modules = standardModules + [records] + reachingOutModules(using: outbound)
    do {
        let result = try await body(modules)
        try? await outbound.shutdown()
        return result
    } catch {
        try? await outbound.shutdown()
        throw error
    }
}
