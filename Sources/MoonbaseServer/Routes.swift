import HookHost
import Hummingbird
import MoonbaseJSON
import RecordStore

/// The REST API of SPEC section 10.
struct Routes: Sendable {
    let store: any RecordStore
    let hooks: HookGenerations
    let writes: RecordWrites
    let deliveries: DeliveryScheduler
    let crons: CronScheduler
    /// This node's heartbeat, and the other nodes'.
    let nodes: NodePresence
    /// Loads the hooks again (SPEC section 13).
    let reload: @Sendable (HookReloadTrigger) async -> Result<HookGeneration, HookReloadRefusal>
    let maxBodyBytes: Int

    /// Registers the API on `api` (the `/api/v1` group); a known path asked with a method it does
    /// not have answers 405.
    func register(on group: RouterGroup<BasicRequestContext>) {
        let api = Endpoints(group: group)
        api.get("health") { _, _ in JSONResponse.make(status: .ok, ["status": "ok"]) }

        api.post("collections") { request, _ in
            let body = try await readObject(request)
            guard case .string(let name)? = body["name"] else { throw APIError(.badRequest, "field 'name' (a string) is required") }
            let info = try await store.createCollection(name: name)
            return JSONResponse.make(status: .created, writing: info.write)
        }
        api.get("collections") { _, _ in
            let collections = try await store.collections()
            return JSONResponse.make(status: .ok, .array(collections.map { .object($0.json) }))
        }
        api.delete("collections/:collection") { _, context in
            try await store.deleteCollection(name: try context.parameters.require("collection"))
            return Response(status: .noContent)
        }

        api.post("collections/:collection/records") { request, context in
            let record = try await writes.create(collection: try context.parameters.require("collection"), body: try await readObject(request))
            return JSONResponse.make(status: .created, writing: record.write)
        }
        api.get("collections/:collection/records") { request, context in
            let collection = try context.parameters.require("collection")
            let query = try RecordListQuery(parameters: request.uri.queryParameters)
            let result = try await store.list(collection: collection, page: query.page, perPage: query.perPage, sort: query.sort,
                                              filters: query.filters)
            return JSONResponse.make(status: .ok, writing: result.write)
        }
        api.get("collections/:collection/records/:id") { _, context in
            let record = try await store.record(collection: try context.parameters.require("collection"), id: try context.parameters.require("id"))
            return JSONResponse.make(status: .ok, writing: record.write)
        }
        api.patch("collections/:collection/records/:id") { request, context in
            let collection = try context.parameters.require("collection")
            let id = try context.parameters.require("id")
            let record = try await writes.update(collection: collection, id: id, patch: try await readObject(request))
            return JSONResponse.make(status: .ok, writing: record.write)
        }
        api.delete("collections/:collection/records/:id") { _, context in
            try await writes.delete(collection: try context.parameters.require("collection"), id: try context.parameters.require("id"))
            return Response(status: .noContent)
        }

        api.get("hooks") { _, _ in
            try await listingResponse()
        }
        api.post("hooks/reload") { _, _ in
            switch await reload(.api) {
            case .success: return try await listingResponse()
            case .failure(let refusal): throw APIError(.conflict, refusal.message)
            }
        }
        registerDeliveries(on: api)
        registerCron(on: api)
        api.get("nodes") { _, _ in JSONResponse.make(status: .ok, try await nodes.listing()) }
        api.refuseOtherMethods()
    }

    /// The listing of every hook file, each entry with the `node` that answers, with the states
    /// the watchdog gave up in a header.
    private func listingResponse() async throws -> Response {
        let cronStatus = try await crons.status()
        let node = JSONValue.string(nodes.identity.name)
        var listing = hooks.listing { cronStatus[$0] ?? [:] }
        if case .array(let files) = listing {
            listing = .array(files.map { file in
                guard case .object(var entry) = file else { return file }
                entry["node"] = node
                return .object(entry)
            })
        }
        var response = JSONResponse.make(status: .ok, listing)
        response.headers[AbandonedStatesSummary.field] = AbandonedStatesSummary(hooks.abandoned).headerValue
        return response
    }

    /// The deliveries log (issue 4): list, one with its attempts, retry.
    private func registerDeliveries(on api: Endpoints) {
        api.get("hooks/deliveries") { request, _ in
            let query = request.uri.queryParameters
            var filter = DeliveryFilter(limit: try positiveInteger(query["limit"], name: "limit") ?? 100)
            var onlyRunning = false
            if let text = query["status"].map(String.init), !text.isEmpty {
                guard let status = DeliveryStatus(rawValue: text) else {
                    throw APIError(.badRequest, "status must be one of " + DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", "))
                }
                // Attempts under way are only known here; the store still has them as pending.
                onlyRunning = status == .running
                filter.status = onlyRunning ? .pending : status
            }
            let hook = query["hook"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            filter.handler = hook.map(handlerKey(for:))
            filter.collection = query["collection"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let kind = try deliveryKind(query["kind"])
            let running = deliveries.runningDeliveries
            let items = kind == .cron ? [] : try await store.deliveries(filter).filter { !onlyRunning || running.contains($0.id) }
            let runs = kind == .record || onlyRunning ? [] : try await cronRuns(filter, hook: hook)
            return JSONResponse.make(status: .ok, .array(newestFirst(items.map { listed($0, running: running) }, runs, limit: filter.limit)))
        }
        api.get("hooks/deliveries/:id") { _, context in
            if let run = try cronRunID(context) { return try await cronRunWithAttempts(run) }
            let id = try deliveryID(context)
            var item = listed(try await store.delivery(id: id), running: deliveries.runningDeliveries)
            item["attempt_log"] = .array(try await store.attempts(deliveryID: id).map { .object($0.json) })
            return JSONResponse.make(status: .ok, .object(item))
        }
        api.post("hooks/deliveries/:id/retry") { request, context in
            if let run = try cronRunID(context) { return try await retryCronRun(run) }
            let id = try deliveryID(context)
            let force = try boolean(request.uri.queryParameters["force"], name: "force")
            if deliveries.runningDeliveries.contains(id) { throw APIError(.conflict, "delivery \(id) is running") }
            let delivery = try await store.requeue(deliveryID: id, force: force)
            // On several nodes, one whose lane another node holds is that node's to run.
            if try await store.deliveryClaims?.holds(deliveryID: id) ?? true { try await deliveries.retryNow(delivery) }
            return JSONResponse.make(status: .accepted, .object(listed(delivery, running: [])))
        }
    }

    /// `hook=` names a handler by its key, or by its name when that is unambiguous.
    private func handlerKey(for text: String) -> String {
        let named = hooks.catalog.handlers.filter { $0.name == text }
        return named.count == 1 ? named[0].key : text
    }

    private func listed(_ delivery: Delivery, running: Set<Int64>) -> JSONObject {
        var item: JSONObject = ["kind": "record"]
        for (key, value) in delivery.json { item[key] = value }
        if running.contains(delivery.id) { item["status"] = "running" }
        return item
    }

    private func deliveryID(_ context: BasicRequestContext) throws -> Int64 {
        guard let id = Int64(try context.parameters.require("id")) else { throw APIError(.notFound, "no such delivery") }
        return id
    }

    /// The body as a JSON object: 413 past the limit, 400 when malformed or not an object.
    private func readObject(_ request: Request) async throws -> JSONObject {
        let value = try RequestBodies.json(try await RequestBodies.collect(request, upTo: maxBodyBytes))
        guard case .object(let object) = value else { throw APIError(.badRequest, "the body must be a JSON object") }
        return object
    }

    /// `true`/`1` or `false`/`0`; absent or empty is false.
    private func boolean(_ text: Substring?, name: String) throws -> Bool {
        switch text {
        case nil, "", "false", "0": return false
        case "true", "1": return true
        default: throw APIError(.badRequest, "\(name) must be true or false")
        }
    }

    private func positiveInteger(_ text: Substring?, name: String) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = Int(text), value >= 1 else { throw APIError(.badRequest, "\(name) must be a positive integer") }
        return value
    }
}

/// Registers routes on a group and remembers each path's methods, so that the other methods of a
/// known path answer 405 (the router alone would answer 404, as for an unknown path).
final class Endpoints {
    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    let group: RouterGroup<BasicRequestContext>
    /// Paths in registration order, with their methods.
    private var methods: [(path: String, methods: [HTTPRequest.Method])] = []

    init(group: RouterGroup<BasicRequestContext>) {
        self.group = group
    }

    func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }
    func patch(_ path: String, _ handler: @escaping Handler) { on(.patch, path, handler) }
    func delete(_ path: String, _ handler: @escaping Handler) { on(.delete, path, handler) }

    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        group.on(RouterPath(path), method: method, use: handler)
        if let index = methods.firstIndex(where: { $0.path == path }) {
            methods[index].methods.append(method)
        } else {
            methods.append((path, [method]))
        }
    }

    /// Answers 405, naming the allowed methods, for every method a registered path lacks.
    func refuseOtherMethods() {
        for (path, allowed) in methods {
            let message = "method not allowed here; use " + allowed.map(\.rawValue).joined(separator: ", ")
            for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where !allowed.contains(method) {
                group.on(RouterPath(path), method: method) { _, _ -> Response in throw APIError(.methodNotAllowed, message) }
            }
        }
    }
}
