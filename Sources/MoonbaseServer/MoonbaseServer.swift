import Foundation
import HookHost
import HostModules
import Hummingbird
import Logging
import LuaRuntime
import MoonbaseModel
import NIOCore
import RecordStore
import ServiceLifecycle

/// Everything `moonbase serve` can be told (SPEC section 11).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8090
    public var dataDirectory = "./moonbase_data"
    /// The PostgreSQL database to store in (`serve --database`); nil: SQLite in `dataDirectory`.
    /// With PostgreSQL the data folder keeps only a generated admin token, and is not locked.
    public var database: PostgresLocation?
    public var hooksDirectory = "./hooks"
    public var adminToken: String?
    /// `serve --watch`: reload the hooks when a `*.lua` file of the hooks folder changes.
    public var watchHooks = false
    /// Lua states in the hook pool; one per core by default.
    public var hookWorkers = ProcessInfo.processInfo.activeProcessorCount
    public var limits = LuaLimits.default
    public var maxBodyBytes = 1 << 20
    /// How long shutdown waits for running after-hooks (the rest is taken up at the next start);
    /// past it, the services are cancelled.
    public var shutdownGrace: Duration = .seconds(10)
    /// Waits before the 1st, 2nd, … retry of a failing delivery; the last one repeats.
    public var retrySchedule: [Duration] = [.seconds(1), .seconds(10), .seconds(60), .seconds(300), .seconds(1800)]
    /// How long succeeded deliveries and their events are kept.
    public var retention: Duration = .seconds(7 * 24 * 3600)
    /// Outbound requests of the `http` and `webhook` modules: timeout, response size, redirects.
    public var outboundHTTP = OutboundHTTPConfiguration(userAgent: "moonbase/\(MoonbaseServer.version)")
    /// After-hook jobs (an event's deliveries that are ready together) under way at once. Many
    /// handlers can wait on the network at the same time; after a crash, at most this many jobs'
    /// deliveries run again.
    public var deliveryConcurrency = 256
    /// Events whose deliveries wait in memory at most. When handlers fall behind the writes,
    /// later events wait in the store only and are read back in commit order as room frees up,
    /// so memory stays bounded however long the backlog grows.
    public var deliveryBacklog = 10_000
    /// How deep hook-made writes may nest (a hook's write fires hooks that write, and so on).
    public var hookWriteDepth = 3
    /// Off: writes record no events and run no after-hooks (for benchmarks and emergencies).
    public var afterHooksEnabled = true
    /// Off: events are stored with their writes but never delivered (for benchmarks and
    /// emergencies); they are delivered by the next start with it on.
    public var hookDeliveryEnabled = true
    /// What a commit survives: a process crash (`normal`) or power loss too (`full`).
    public var sync = SQLiteStore.Synchronous.normal
    /// `GET /metrics` without the admin token (for a scraper on a trusted network).
    public var metricsPublic = false
    /// The time deliveries are scheduled by (tests drive it by hand).
    public var clock: any DeliveryClock = SystemDeliveryClock()
    /// This node's name among the nodes sharing a PostgreSQL database (`serve --node-id`); nil:
    /// `host:port`. See `node`.
    public var nodeID: String?
    /// How long a node's claim on a delivery lasts without being renewed (PostgreSQL): another
    /// node takes up the deliveries of a node that died after this long.
    public var deliveryLease: Duration = .seconds(30)
    /// How often this node records its heartbeat in the store (`GET /api/v1/nodes`); a node is
    /// listed while its last heartbeat is less than three of these old.
    public var nodeHeartbeat: Duration = .seconds(5)

    public init() {}

    /// This node's name: `nodeID`, or `host:port`.
    public var node: String { nodeID ?? "\(host):\(port)" }

    /// Stores in the PostgreSQL database `url` names (`postgres://USER[:PASS]@HOST[:PORT]/DB`).
    /// - Throws: `DatabaseURLError` saying what is wrong with the URL.
    public mutating func useDatabase(url: String) throws {
        database = try PostgresLocation(url: url)
    }
}

/// The server: the store and the hook pool behind the REST API.
public struct MoonbaseServer: Sendable {
    /// Moonbase's version, as `moonbase --version` and the `User-Agent` of hook requests show it.
    public static let version = "0.1.0"
    /// The response header naming the node that answered (every response has it).
    public static let nodeHeader = "Moonbase-Node"

    public let store: any RecordStore
    /// The current generation of hooks, which every use asks for (SPEC section 13).
    public let hooks: HookGenerations
    public let adminToken: String
    let deliveries: DeliveryScheduler
    /// Runs the `cron` hooks.
    let crons: CronScheduler
    let writes: RecordWrites
    /// The client behind `http` and `webhook`, shut down with the server.
    let outbound: OutboundHTTP
    let configuration: ServerConfiguration
    let logger: Logger
    /// The series of `/metrics`, in this server's own registry.
    let metrics: ServerMetrics
    /// Held from before the SQLite store opens until the server stops; nil on PostgreSQL.
    let dataFolder: DataFolderLock?
    /// This node's name and address, in every response's `Moonbase-Node`.
    let identity: NodeIdentity
    /// This node's heartbeat in the store, and the listing of the live nodes.
    let presence: NodePresence

    /// Opens the SQLite store, loads the hooks and resolves the admin token (generated and
    /// logged once when there is none). A configuration naming a PostgreSQL database needs
    /// `open(configuration:logger:)`, which connects to it.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        if let database = configuration.database { throw ServerError.needsAsyncOpen(database) }
        let dataFolder = try DataFolderLock(directory: configuration.dataDirectory)
        let committed = CommittedEvents(capacity: configuration.deliveryBacklog, logger: logger)
        let metrics = Self.metrics(configuration)
        // Without delivery, events are stored and nobody takes them (a later start does).
        let store = try SQLiteStore(directory: configuration.dataDirectory, events: configuration.hookDeliveryEnabled ? committed : nil,
                                    commits: { metrics.committed(operations: $0) }, synchronous: configuration.sync)
        try self.init(configuration: configuration, logger: logger, store: store, committed: committed, metrics: metrics,
                      dataFolder: dataFolder)
    }

    /// Opens the store the configuration names (SQLite, or PostgreSQL: connecting and migrating
    /// it), then as `init(configuration:logger:)`.
    /// - Throws: `StoreError.unavailable` when PostgreSQL cannot be reached, `StoreError.database`
    ///   when it refuses (wrong password, no such database), as for SQLite otherwise.
    public static func open(configuration: ServerConfiguration, logger: Logger) async throws -> MoonbaseServer {
        guard let database = configuration.database else { return try MoonbaseServer(configuration: configuration, logger: logger) }
        let committed = CommittedEvents(capacity: configuration.deliveryBacklog, logger: logger)
        let metrics = Self.metrics(configuration)
        let store = try await PostgresStore.open(database, events: configuration.hookDeliveryEnabled ? committed : nil,
                                                 commits: { metrics.committed(operations: $0) }, logger: logger,
                                                 node: configuration.node, lease: configuration.deliveryLease)
        logger.info("storing in PostgreSQL", metadata: ["database": .string(database.description), "node": .string(configuration.node)])
        return try MoonbaseServer(configuration: configuration, logger: logger, store: store, committed: committed, metrics: metrics,
                                  dataFolder: nil)
    }

    private static func metrics(_ configuration: ServerConfiguration) -> ServerMetrics {
        ServerMetrics(node: configuration.node, version: version)
    }

    private init(configuration: ServerConfiguration, logger: Logger, store: any RecordStore, committed: CommittedEvents,
                 metrics: ServerMetrics, dataFolder: DataFolderLock?) throws {
        self.configuration = configuration
        self.logger = logger
        self.dataFolder = dataFolder
        self.metrics = metrics
        self.store = store
        let directory = HookDirectory(path: configuration.hooksDirectory)
        let records = RecordsModule(store: store, maxDepth: configuration.hookWriteDepth)
        outbound = OutboundHTTP(configuration: configuration.outboundHTTP)
        let modules = standardModules + [records.module] + reachingOutModules(using: outbound)
        hooks = try HookGenerations(HookLoading(directory: directory, states: configuration.hookWorkers, limits: configuration.limits,
                                                modules: modules, logger: logger))
        deliveries = DeliveryScheduler(store: store, hooks: hooks, clock: configuration.clock,
                                       retrySchedule: configuration.retrySchedule, maxJobs: configuration.deliveryConcurrency,
                                       committed: committed, metrics: HookMetrics(metrics: metrics), logger: logger)
        deliveries.metrics.track(hooks.current)
        // Cron runs are claimed and kept in the store (both engines are `CronStore`s): an engine
        // without cron storage would serve none.
        crons = CronScheduler(store: store as? any CronStore, hooks: hooks, clock: configuration.clock,
                              retrySchedule: configuration.retrySchedule, metrics: metrics.factory, logger: logger)
        writes = RecordWrites(store: store, hooks: hooks, deliveries: deliveries, afterHooksEnabled: configuration.afterHooksEnabled,
                              syncLimit: configuration.limits.wallClock * 2)
        records.connect(writes)
        identity = NodeIdentity(configuration)
        // Both engines keep nodes; any other store is a node on its own.
        presence = NodePresence(registry: store as? any NodeRegistry ?? LocalNodeRegistry(), hooks: hooks, identity: identity,
                                started: Timestamp.now(), interval: configuration.nodeHeartbeat, logger: logger)
        let (token, generated) = try AdminToken.resolve(given: configuration.adminToken, dataDirectory: configuration.dataDirectory)
        adminToken = token
        if generated {
            // Logged, not printed: a buffered stdout would keep it until shutdown under systemd or nohup.
            logger.notice("generated an admin token", metadata: [
                "token": .string(token), "kept_in": .string(configuration.dataDirectory + "/" + AdminToken.fileName),
            ])
        }
    }

    /// The router with every route and middleware, for `app.test(.router)` and for serving.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
        router.add(middleware: NodeHeaderMiddleware(identity: identity))
        router.add(middleware: ErrorMiddleware())
        registerMetrics(on: router)
        registerDashboard(on: router)
        let api = router.group("api/v1").add(middleware: AuthMiddleware(token: adminToken))
        let reload = { @Sendable (trigger: HookReloadTrigger) in await reloadHooks(by: trigger) }
        Routes(store: store, hooks: hooks, writes: writes, deliveries: deliveries, crons: crons, nodes: presence, reload: reload,
               maxBodyBytes: configuration.maxBodyBytes)
            .register(on: api)
        // Added last, a middleware reaches only the paths no route above has (the router's 404s).
        router.add(middleware: LuaRoutes(hooks: hooks, auth: AuthMiddleware(token: adminToken), maxBodyBytes: configuration.maxBodyBytes))
        return router
    }

    /// The long-running parts, run as services under the application. On graceful shutdown the
    /// group stops them in reverse: the purger, then the scheduler (letting running jobs finish),
    /// then the hook workers and the outbound client they use, then the store's upkeep (SQLite's
    /// checkpointer), which the others may still need. The node's heartbeat stops first: the node
    /// leaves the registry as it starts to shut down.
    var services: [any Service] {
        let (hooks, outbound) = (hooks, outbound)
        let hookWorkers = ClosureService {
            try? await gracefulShutdown()
            // Cancellation (past the grace period) leaves the workers to the process's end.
            let closed = Latch(count: 1)
            Task {
                await hooks.shutdown()
                try? await outbound.shutdown()
                closed.open()
            }
            await closed.wait()
        }
        let purger = RetentionPurger(store: store, retention: configuration.retention, clock: configuration.clock, logger: logger,
                                     crons: crons.store)
        // Without delivery the scheduler never runs: events stay in the store for a later start.
        // The claimer stops before the scheduler, which then gives the node's claims back.
        let claimer: [any Service] = store.deliveryClaims.map { [DeliveryClaimer(scheduler: deliveries, claims: $0, logger: logger)] } ?? []
        return store.upkeep + (configuration.hookDeliveryEnabled ? [hookWorkers, deliveries] + claimer + [crons, purger] : [hookWorkers, purger])
            + [presence]
    }

    /// The application with its services, which logs one line once it listens; for serving and
    /// for `app.test`.
    public func application() -> some ApplicationProtocol {
        let catalog = hooks.catalog
        let (logger, metrics, identity) = (logger, metrics, identity)
        let (host, port, nodeID) = (configuration.host, configuration.port, configuration.nodeID)
        return Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "moonbase"),
            services: services,
            onServerRunning: { channel in
                if port == 0, let bound = channel.localAddress?.port {
                    identity.listening(on: bound)
                    if nodeID == nil { metrics.identify(node: identity.name) }
                }
                logger.info("moonbase ready", metadata: [
                    "address": .string("\(host):\(channel.localAddress?.port ?? 0)"),
                    "hook_files_loaded": .stringConvertible(catalog.loadedCount),
                    "hook_files_failed": .stringConvertible(catalog.failedCount),
                ])
            },
            logger: logger
        )
    }

    /// Loads the hooks again and swaps the new generation in (SPEC section 13); returns once it
    /// serves, deliveries included, or why it was refused.
    public func reloadHooks(by trigger: HookReloadTrigger) async -> Result<HookGeneration, HookReloadRefusal> {
        let result = await hooks.reload(by: trigger)
        if case .success(let generation) = result {
            deliveries.metrics.track(generation)
            await deliveries.adopt()
            await crons.adopt()
        }
        return result
    }

    /// The most events whose deliveries waited in memory at once (tests and diagnostics): at most
    /// `deliveryBacklog`.
    public var peakDeliveryBacklog: Int { deliveries.peakBacklog }

    /// Returns once the cron scheduler has started and no cron run is under way (tests).
    public func waitForCronRuns() async {
        await crons.waitUntilIdle()
    }

    /// Returns once no delivery is running or ready to run.
    public func waitForDeliveries() async {
        await deliveries.waitUntilIdle()
    }

    /// Serves until SIGTERM or SIGINT, then lets running after-hooks finish within the grace
    /// period; whatever is unfinished then stays in the store for the next start.
    public func run() async throws {
        let reloads = HookReloadTriggers(folder: configuration.hooksDirectory, watch: configuration.watchHooks, logger: logger) { trigger in
            _ = await reloadHooks(by: trigger)
        }
        var group = ServiceGroupConfiguration(services: [application(), reloads], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownGrace
        do {
            try await ServiceGroup(configuration: group).run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ServerError.portInUse(host: configuration.host, port: configuration.port)
        }
        dataFolder?.release()
        if let postgres = store as? PostgresStore { await postgres.close() }
        logger.info("moonbase stopped")
    }
}
