import ArgumentParser
import Foundation
import Logging
import MoonbaseServer
import RecordStore

/// `moonbase serve`: the REST API on SQLite (or PostgreSQL, `--database`) with the hooks of the hooks folder.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the REST API.")

    private static let environment = ProcessInfo.processInfo.environment

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8090

    @Option(name: .customLong("data"), help: "Data folder (the SQLite database and the generated admin token).")
    var dataDirectory = "./moonbase_data"

    @Option(name: .customLong("database"),
            help: "Store in PostgreSQL instead of SQLite: postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=MODE] (env MOONBASE_DATABASE_URL).")
    var databaseURL: String = ServeCommand.environment["MOONBASE_DATABASE_URL"] ?? ""

    @Option(name: .customLong("hooks-dir"), help: "Hooks folder (env MOONBASE_HOOKS_DIR).")
    var hooksDirectory = ServeCommand.environment["MOONBASE_HOOKS_DIR"] ?? "./hooks"

    @Option(name: .customLong("admin-token"), help: "Admin token (env MOONBASE_ADMIN_TOKEN); generated on first start if absent.")
    var adminToken: String = ServeCommand.environment["MOONBASE_ADMIN_TOKEN"] ?? ""

    @Option(name: .customLong("hook-workers"), help: "Lua states running hooks (default: one per core).")
    var hookWorkers = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 beyond).")
    var maxBodyBytes = 1 << 20

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("hook-retry-schedule"), help: "Seconds before each retry of a failing delivery, comma-separated; the last repeats.")
    var retrySchedule = "1,10,60,300,1800"

    @Option(name: .customLong("hook-retention-hours"), help: "How long succeeded deliveries are kept.")
    var retentionHours = 7 * 24

    @Option(name: .customLong("hook-concurrency"), help: "After-hook jobs under way at once (handlers waiting on the network count).")
    var hookConcurrency = ServerConfiguration().deliveryConcurrency

    @Option(name: .customLong("hook-backlog"), help: "Events waiting for after-hooks kept in memory; more wait in the store only.")
    var hookBacklog = ServerConfiguration().deliveryBacklog

    @Option(name: .customLong("hook-write-depth"), help: "How deep hook-made writes may nest (a hook's write fires hooks that write, …).")
    var hookWriteDepth = ServerConfiguration().hookWriteDepth

    @Option(name: .customLong("http-timeout-ms"), help: "Default timeout of a hook's http.request, in milliseconds.")
    var httpTimeoutMilliseconds = 10_000

    @Option(name: .customLong("http-max-response-bytes"), help: "Largest response body a hook's http.request accepts.")
    var httpMaxResponseBytes = ServerConfiguration().outboundHTTP.maxResponseBytes

    @Flag(name: .customLong("no-after-hooks"), help: "Record no events and run no after-hooks (before-hooks still run).")
    var noAfterHooks = false

    @Flag(name: .customLong("no-hook-delivery"), help: "Store events with their writes but never deliver them (for benchmarks and emergencies).")
    var noHookDelivery = false

    @Option(name: .customLong("sync"), help: "normal: a commit survives a process crash; full: power loss too (an fsync per group commit).")
    var sync = ServerConfiguration().sync.rawValue

    @Flag(name: .customLong("metrics-public"), help: "Serve GET /metrics without the admin token.")
    var metricsPublic = false

    @Flag(help: "Reload the hooks when a *.lua file in the hooks folder changes (kill -HUP reloads them too).")
    var watch = false

    @Option(name: .customLong("node-id"), help: "This node's name among nodes sharing a PostgreSQL database (default: host:port).")
    var nodeID: String?

    @Option(name: .customLong("delivery-lease-ms"), help: "How long a node's claim on a delivery lasts unrenewed (PostgreSQL): a dead node's deliveries are taken up after it.")
    var deliveryLeaseMilliseconds = Int(ServerConfiguration().deliveryLease.components.seconds * 1000)

    @OptionGroup var budgets: BudgetOptions

    func validate() throws {
        guard SQLiteStore.Synchronous(rawValue: sync) != nil else { throw ValidationError("--sync must be normal or full, not '\(sync)'") }
        guard hookWorkers >= 1 else { throw ValidationError("--hook-workers must be at least 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 (any free port) and 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard retryDelays != nil else { throw ValidationError("--hook-retry-schedule takes whole seconds separated by commas, e.g. 1,10,60") }
        guard retentionHours >= 1 else { throw ValidationError("--hook-retention-hours must be at least 1") }
        guard hookConcurrency >= 1 else { throw ValidationError("--hook-concurrency must be at least 1") }
        guard hookBacklog >= 1 else { throw ValidationError("--hook-backlog must be at least 1") }
        guard hookWriteDepth >= 0 else { throw ValidationError("--hook-write-depth must be 0 (hooks cannot write) or more") }
        guard httpTimeoutMilliseconds >= 1 else { throw ValidationError("--http-timeout-ms must be at least 1") }
        guard httpMaxResponseBytes >= 1 else { throw ValidationError("--http-max-response-bytes must be at least 1") }
        guard deliveryLeaseMilliseconds >= 100 else { throw ValidationError("--delivery-lease-ms must be at least 100") }
        if let nodeID, nodeID.isEmpty || nodeID.count > 200 {
            throw ValidationError("--node-id must be 1 to 200 characters")
        }
        if !databaseURL.isEmpty {
            var probe = ServerConfiguration()
            do { try probe.useDatabase(url: databaseURL) } catch { throw ValidationError("--database: \(error)") }
        }
    }

    private var retryDelays: [Duration]? {
        let delays = retrySchedule.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !delays.isEmpty, delays.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return delays.map { .seconds($0!) }
    }

    func run() async throws {
        var logger = Logger(label: "moonbase")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDirectory
        if !databaseURL.isEmpty { try configuration.useDatabase(url: databaseURL) }
        configuration.hooksDirectory = hooksDirectory
        configuration.adminToken = adminToken
        configuration.hookWorkers = hookWorkers
        configuration.maxBodyBytes = maxBodyBytes
        configuration.limits = budgets.limits
        configuration.retrySchedule = retryDelays ?? configuration.retrySchedule
        configuration.retention = .seconds(retentionHours * 3600)
        configuration.afterHooksEnabled = !noAfterHooks
        configuration.hookDeliveryEnabled = !noHookDelivery
        configuration.hookWriteDepth = hookWriteDepth
        configuration.metricsPublic = metricsPublic
        configuration.watchHooks = watch
        configuration.sync = SQLiteStore.Synchronous(rawValue: sync) ?? .normal
        configuration.deliveryConcurrency = hookConcurrency
        configuration.deliveryBacklog = hookBacklog
        configuration.outboundHTTP.defaultTimeout = .milliseconds(httpTimeoutMilliseconds)
        configuration.outboundHTTP.maxResponseBytes = httpMaxResponseBytes
        configuration.nodeID = nodeID
        configuration.deliveryLease = .milliseconds(deliveryLeaseMilliseconds)
        try await MoonbaseServer.open(configuration: configuration, logger: logger).run()
    }
}
