import Foundation
import HookHost
import Hummingbird
import Logging
import LuaRuntime
import RecordStore

/// Everything `moonbase serve` can be told (SPEC section 11).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8090
    public var dataDirectory = "./moonbase_data"
    public var hooksDirectory = "./hooks"
    public var adminToken: String?
    /// Lua states in the hook pool; one per core by default.
    public var hookWorkers = ProcessInfo.processInfo.activeProcessorCount
    public var limits = LuaLimits.default
    public var maxBodyBytes = 1 << 20
    /// How long shutdown waits for queued after-hooks.
    public var shutdownGrace: Duration = .seconds(10)

    public init() {}
}

/// The server: the store and the hook pool behind the REST API.
public struct MoonbaseServer: Sendable {
    public let store: RecordStore
    public let hooks: HookPool
    public let adminToken: String
    let configuration: ServerConfiguration
    let logger: Logger

    /// Opens the store, loads the hooks and resolves the admin token (generated and printed
    /// once when there is none).
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        store = try RecordStore(directory: configuration.dataDirectory)
        let directory = HookDirectory(path: configuration.hooksDirectory)
        let loaded: LoadedHooks
        if directory.exists {
            loaded = try LoadedHooks.load(directory: directory, states: configuration.hookWorkers, limits: configuration.limits, logger: logger)
        } else {
            logger.warning("no hooks folder: serving without hooks", metadata: ["hooks_dir": .string(configuration.hooksDirectory)])
            loaded = try LoadedHooks.load(files: [], directory: directory, states: configuration.hookWorkers, limits: configuration.limits, logger: logger)
        }
        hooks = HookPool(loaded)
        let (token, generated) = try AdminToken.resolve(given: configuration.adminToken, dataDirectory: configuration.dataDirectory)
        adminToken = token
        if generated {
            print("Generated an admin token (kept in \(configuration.dataDirectory)/\(AdminToken.fileName)):\n\(token)")
        }
    }

    /// The router with every route and middleware, for `app.test(.router)` and for serving.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthMiddleware(token: adminToken))
        let writes = RecordWrites(store: store, hooks: hooks)
        Routes(store: store, hooks: hooks, writes: writes, maxBodyBytes: configuration.maxBodyBytes).register(on: router)
        return router
    }

    /// The application, which logs one line once it listens.
    public func application() -> some ApplicationProtocol {
        let catalog = hooks.catalog
        let logger = logger
        let host = configuration.host
        return Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "moonbase"),
            onServerRunning: { channel in
                logger.info("moonbase ready", metadata: [
                    "address": .string("\(host):\(channel.localAddress?.port ?? 0)"),
                    "hook_files_loaded": .stringConvertible(catalog.loadedCount),
                    "hook_files_failed": .stringConvertible(catalog.failedCount),
                ])
            },
            logger: logger
        )
    }

    /// Serves until SIGTERM or SIGINT, then lets queued after-hooks finish within the grace period.
    public func run() async throws {
        try await application().runService()
        logger.info("stopping: waiting for queued hooks", metadata: ["grace": .string("\(configuration.shutdownGrace)")])
        let hooks = hooks
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await hooks.shutdown(); return true }
            group.addTask { try? await Task.sleep(for: configuration.shutdownGrace); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !finished { logger.warning("queued hooks did not finish within the grace period") }
        logger.info("moonbase stopped")
    }
}
