import HookHost
import Metrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Synchronization

/// The series of `GET /metrics` (SPEC section 16) but the hooks' (`HookMetrics`), in a registry
/// of this server's own: two servers in one process (parallel tests) never share a series, and
/// nothing is bootstrapped globally.
///
/// The hot paths pay little: a request costs a cached counter and histogram, a delivery outcome
/// a histogram and a counter, a transaction one histogram sample. What the hook host and the
/// backlog already count (calls, errors, spills, the backlog's size) is read at scrape time
/// instead of being counted twice. Labels are bounded: route patterns (never raw paths), methods,
/// status codes, the listing's handler names and files; never record ids or free text.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let requests = Mutex<[RequestKey: RequestSeries]>([:])
    private let commitSizes: Recorder
    private let backlogSize: Gauge
    private let spills: Counter
    /// `moonbase_node_info`, which names the node that answers.
    private let node = Mutex<Gauge?>(nil)
    private let version: String
    /// The backlog's spills as last exported, to add only what is new.
    private let exportedSpills = Mutex(0)

    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    private struct RequestSeries {
        let count: Counter
        let duration: Timer
    }

    /// Durations from 0.5 ms to 10 s: handlers and requests both mostly take milliseconds.
    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10),
    ]

    /// `node` names the node that answers (host:port until nodes have ids of their own).
    init(node id: String, version: String) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        factory.valueHistogramBuckets["moonbase_store_commit_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        self.factory = factory
        self.version = version
        commitSizes = Recorder(label: "moonbase_store_commit_batch_size", factory: factory)
        backlogSize = Gauge(label: "moonbase_delivery_backlog_events", factory: factory)
        spills = Counter(label: "moonbase_delivery_spills_total", factory: factory)
        identify(node: id)
    }

    /// Names the node in `moonbase_node_info` (again once the port is known, when it was 0).
    func identify(node id: String) {
        node.withLock { node in
            node?.destroy()
            node = Gauge(label: "moonbase_node_info", dimensions: [("node", id), ("version", version)], factory: factory)
            node?.record(1)
        }
    }

    /// One transaction of the store committed `operations` writes (group commit).
    func committed(operations: Int) {
        commitSizes.record(operations)
    }

    /// Methods named in the series; any other (a client may send any token) counts as `other`.
    private static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// One HTTP request answered. `route` is the matched route's pattern.
    func answered(route: String, method: String, status: Int, after duration: Duration) {
        let key = RequestKey(route: route, method: Self.methods.contains(method) ? method : "other", status: status)
        let series = requests.withLock { known in
            if let series = known[key] { return series }
            let labels = [("route", key.route), ("method", key.method), ("status", String(status))]
            let series = RequestSeries(count: Counter(label: "moonbase_http_requests_total", dimensions: labels, factory: factory),
                                       duration: Timer(label: "moonbase_http_request_duration_seconds", dimensions: labels, factory: factory))
            known[key] = series
            return series
        }
        series.count.increment()
        series.duration.recordNanoseconds(duration.nanoseconds)
    }

    /// The exposition: counters kept elsewhere (the hook host's `stats`, the backlog's) are
    /// brought up to date first.
    func scrape(hooks: HookMetrics, generations: [HookGeneration], backlog: (held: Int, spills: Int)) -> [UInt8] {
        hooks.export(generations)
        exportedSpills.withLock { exported in
            spills.increment(by: backlog.spills - exported)
            exported = backlog.spills
        }
        backlogSize.record(backlog.held)
        return registry.emitToBuffer()
    }
}

/// The hooks' series: each handler's calls, errors and duration, labelled with the listing's
/// handler name and file; the deliveries' attempts by outcome, retries asked for, dead letters.
/// A handler's series outlive reloads: each generation's counters are added to the same series
/// (same labels), and a retired generation's are exported a last time once it is freed.
final class HookMetrics: Sendable {
    private let factory: PrometheusMetricsFactory
    /// The handlers' series of each live generation, by generation number.
    private let generations = Mutex<[Int: GenerationSeries]>([:])
    private let succeeded: Counter
    private let failed: Counter
    private let dead: Counter
    private let retried: Counter
    private let deadLetters: Counter

    private struct Handler: Sendable {
        let calls: Counter
        let errors: Counter
        /// After-handlers only: their deliveries are timed (a before-handler's time is its request's).
        let duration: Timer?
    }

    /// One generation's handlers, by catalog index, and its counters as last exported. It keeps
    /// the catalog (its counters), never the generation: metrics must not keep Lua states alive.
    private struct GenerationSeries: Sendable {
        weak var generation: HookGeneration?
        let catalog: HookCatalog
        let handlers: [Handler]
        var exported: [(calls: Int, errors: Int)]

        /// Adds what the catalog counted since the last export.
        mutating func export() {
            for (index, stat) in zip(handlers.indices, catalog.statsSnapshot()) {
                handlers[index].calls.increment(by: stat.calls - exported[index].calls)
                handlers[index].errors.increment(by: stat.errors - exported[index].errors)
                exported[index] = (stat.calls, stat.errors)
            }
        }
    }

    init(metrics: ServerMetrics) {
        let factory = metrics.factory
        self.factory = factory
        func deliveries(_ status: String) -> Counter {
            Counter(label: "moonbase_deliveries_total", dimensions: [("status", status)], factory: factory)
        }
        succeeded = deliveries("succeeded")
        failed = deliveries("failed")
        dead = deliveries("dead")
        retried = deliveries("retried")
        deadLetters = Counter(label: "moonbase_delivery_dead_letters_total", factory: factory)
    }

    private func series(of generation: HookGeneration) -> GenerationSeries {
        let factory = factory
        let handlers = generation.catalog.handlers.map { handler in
            let labels = [("handler", handler.name), ("file", handler.file)]
            return Handler(calls: Counter(label: "moonbase_hook_handler_calls_total", dimensions: labels, factory: factory),
                           errors: Counter(label: "moonbase_hook_handler_errors_total", dimensions: labels, factory: factory),
                           duration: handler.phase == .after
                               ? Timer(label: "moonbase_hook_handler_duration_seconds", dimensions: labels, factory: factory) : nil)
        }
        return GenerationSeries(generation: generation, catalog: generation.catalog, handlers: handlers,
                                exported: Array(repeating: (0, 0), count: handlers.count))
    }

    /// Exports, a last time, the generations that are gone (freed, or not among `live` when
    /// given), and forgets them.
    private static func exportGone(_ generations: inout [Int: GenerationSeries], live: Set<Int>?) {
        for (number, var entry) in generations where entry.generation == nil || !(live?.contains(number) ?? true) {
            entry.export()
            generations[number] = nil
        }
    }

    /// Counts `generation`'s handlers from now on (at start-up and after each reload), so that
    /// its calls are exported even if it is gone before the next scrape; returns its series.
    func track(_ generation: HookGeneration) {
        _ = handlers(of: generation)
    }

    private func handlers(of generation: HookGeneration) -> [Handler] {
        generations.withLock { generations in
            if generations[generation.number] == nil {
                Self.exportGone(&generations, live: nil) // keeps the catalogs of freed generations few
                generations[generation.number] = series(of: generation)
            }
            return generations[generation.number]!.handlers
        }
    }

    /// Adds to the calls and errors series what the hook host counted since the last scrape, in
    /// every generation that is `live` or was until now (for the last time).
    func export(_ live: [HookGeneration]) {
        generations.withLock { generations in
            for generation in live where generations[generation.number] == nil { generations[generation.number] = series(of: generation) }
            Self.exportGone(&generations, live: Set(live.map(\.number)))
            for number in generations.keys { generations[number]!.export() }
        }
    }

    /// A delivery job's outcomes (each handler that ran, with its duration) and the verdicts on
    /// its deliveries.
    func finished(_ outcomes: [[HookOutcome]], _ verdicts: [AttemptVerdict], in generation: HookGeneration) {
        let handlers = handlers(of: generation)
        for group in outcomes {
            for outcome in group where handlers.indices.contains(outcome.handler) {
                handlers[outcome.handler].duration?.recordNanoseconds(outcome.duration.nanoseconds)
            }
        }
        var counts = (succeeded: 0, failed: 0, dead: 0)
        for verdict in verdicts {
            switch verdict {
            case .succeeded: counts.succeeded += 1
            case .retry: counts.failed += 1
            case .dead: counts.dead += 1
            }
        }
        if counts.succeeded > 0 { succeeded.increment(by: counts.succeeded) }
        if counts.failed > 0 { failed.increment(by: counts.failed) }
        if counts.dead > 0 {
            dead.increment(by: counts.dead)
            deadLetters.increment(by: counts.dead)
        }
    }

    /// A failed or dead delivery was put back by the retry endpoint.
    func retriedByRequest() {
        retried.increment()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
