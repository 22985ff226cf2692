import Logging
import LuaRuntime

/// Every hook file loaded into a number of Lua states, and the catalog they share.
public struct LoadedHooks {
    public let catalog: HookCatalog
    public let runtimes: [HookRuntime]

    /// Discovers the files of `directory` (or takes just the file named `only`) and loads all of
    /// them into each of `states` Lua states. A file that fails in any state is dropped from all
    /// of them and shows as failed.
    ///
    /// `modules` (such as `http`) become globals of every hook file.
    public static func load(directory: HookDirectory, only: String? = nil, states: Int, limits: LuaLimits = .default,
                            modules: [LuaModule] = [], logger: Logger) throws -> LoadedHooks {
        let files = try only.map { [try directory.file(named: $0)] } ?? directory.discover()
        return try load(files: files, directory: directory, states: states, limits: limits, modules: modules, logger: logger)
    }

    /// Loads the given files (`require` looks in `directory`) into each of `states` Lua states.
    public static func load(files: [HookFile], directory: HookDirectory, states: Int, limits: LuaLimits = .default,
                            modules: [LuaModule] = [], logger: Logger) throws -> LoadedHooks {
        var runtimes: [HookRuntime] = []
        for _ in 0..<max(1, states) {
            runtimes.append(try HookRuntime(files: files, directory: directory, limits: limits, modules: modules, logger: logger))
        }
        var entries: [HookFileEntry] = []
        var handlers: [HookHandler] = []
        /// The routes of the files loaded so far, by identity: a later file may not take one.
        var routeOwners: [String: String] = [:]
        /// The cron names of the files loaded so far, likewise.
        var cronOwners: [String: String] = [:]
        for (fileIndex, file) in files.enumerated() {
            let loads = runtimes.map { $0.loads[fileIndex] }
            var entry = HookFileEntry(file: file.displayPath, module: file.module, status: .loaded, error: nil,
                                      functions: loads[0].functions, handlerIndices: [])
            if let error = loads.lazy.compactMap(\.error).first {
                entry.status = .failed
                entry.error = error.message
            } else if loads.contains(where: { $0.handlers.map(\.handler) != loads[0].handlers.map(\.handler) }) {
                entry.status = .failed
                entry.error = "\(file.displayPath): registers different handlers in each Lua state (registration must not depend on time or randomness)"
            } else if let (route, owner) = loads[0].handlers.lazy.compactMap({ loaded in
                loaded.handler.route.flatMap { route in routeOwners[route.identity].map { (loaded, $0) } }
            }).first {
                entry.status = .failed
                entry.error = "\(file.displayPath):\(route.registeredAt): route: \(route.handler.collectionLabel) is already defined by \(owner)"
            } else if let (cron, owner) = loads[0].handlers.lazy.compactMap({ loaded in
                loaded.handler.cron.flatMap { cron in cronOwners[cron.name].map { (loaded, $0) } }
            }).first {
                entry.status = .failed
                entry.error = "\(file.displayPath):\(cron.registeredAt): cron: '\(cron.handler.name)' is already defined by \(owner)"
            }
            if entry.status == .failed {
                entry.functions = []
                for (runtime, load) in zip(runtimes, loads) {
                    for loaded in load.handlers { runtime.state.release(loaded.ref) }
                }
                logger.error("hook file failed", metadata: ["file": .string(file.displayPath), "error": .string(entry.error ?? "")])
            } else {
                var keys: Set<String> = []
                for position in loads[0].handlers.indices {
                    entry.handlerIndices.append(handlers.count)
                    var handler = loads[0].handlers[position].handler
                    let base = "\(handler.file):\(handler.name):\(handler.eventLabel):\(handler.collectionLabel)"
                    handler.key = base
                    var copy = 1
                    while !keys.insert(handler.key).inserted { // the same function registered twice alike
                        copy += 1
                        handler.key = "\(base)#\(copy)"
                    }
                    let owner = "\(file.displayPath):\(loads[0].handlers[position].registeredAt)"
                    if let route = handler.route { routeOwners[route.identity] = owner }
                    if let cron = handler.cron { cronOwners[cron.name] = owner }
                    handlers.append(handler)
                    for (runtime, load) in zip(runtimes, loads) { runtime.refs.append(load.handlers[position].ref) }
                }
                logger.info("hook file loaded", metadata: [
                    "file": .string(file.displayPath), "handlers": .stringConvertible(entry.handlerIndices.count),
                ])
            }
            entries.append(entry)
        }
        let catalog = HookCatalog(files: entries, handlers: handlers)
        for runtime in runtimes { runtime.catalog = catalog }
        return LoadedHooks(catalog: catalog, runtimes: runtimes)
    }
}
